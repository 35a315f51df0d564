"""Training throughput: arithlab's jitted train step beside a PyTorch nanoGPT of the same shape.

  python -m benchmarks.train_step                      # Lee 6L-6H-384 and Shen ~100M, fp32 and bf16
  python -m benchmarks.train_step --models=lee --dtypes=bfloat16 --batch=64 --seq=256
  python -m benchmarks.train_step --smoke              # seconds; what the tests run

For each model and compute dtype: the real step of `arithlab.train.step` (AdamW, clipping,
metrics; built by `step.init` / `make_train_step` as the training loop does) on a fixed
full batch of random tokens already on the device (no padding, every token a target), and
the PyTorch reference of `benchmarks/torch_gpt.py` on the same tokens (`torch.compile` unless
--no-compile; eager when compilation fails, said in the table). Both are warmed up (compiled)
first, then timed in alternation, one step each per round; the table gives the median.

Tokens = batch x seq model inputs per step. Model FLOPs per token = 6 N + 12 L T d_model
(PaLM appendix B, nanoGPT's estimate_mfu): N = parameters less the position table, T = seq,
attention counted in full. MFU = model FLOPs per second / the device's dense peak (see
`common.PEAK_TFLOPS`); on a CPU, which has no such entry, the table gives the achieved FLOP/s.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for torch

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from arithlab import config  # noqa: E402
from arithlab.train import mesh as mesh_lib  # noqa: E402
from arithlab.train import optim  # noqa: E402
from arithlab.train import step as step_lib  # noqa: E402
from benchmarks import common  # noqa: E402

# (batch, seq) per model: a GPU default near the papers' training shapes (Lee: batch 256 over a
# 256-token block); CPU defaults small enough for a few minutes on 2 cores.
SHAPES = {"gpu": {"lee": (256, 256), "shen": (32, 1024)},
          "cpu": {"lee": (8, 128), "shen": (4, 128)}}
ROUNDS = {"gpu": 20, "cpu": 5}


@dataclasses.dataclass(frozen=True)
class Result:
  """One measured row: median step seconds, tokens per step, model FLOPs per step."""

  framework: str
  seconds: float
  tokens: int
  flops: float
  params: int


def random_tokens(cfg, batch: int, seq: int) -> np.ndarray:
  """int32 [batch, seq + 1] uniform over the non-PAD ids (the step reads [:, :-1])."""
  return np.random.default_rng(0).integers(1, cfg.vocab_size, (batch, seq + 1)).astype(np.int32)


def arithlab_step(model_cfg, tokens_BxT: np.ndarray) -> tuple[Callable[[], None], int]:
  """A blocking closure over arithlab's jitted train step on a fixed device batch, and the
  parameter count. Each call advances the (donated) train state by one step."""
  cfg = config.default_config()
  cfg.model = model_cfg
  cfg.train.batch_size = tokens_BxT.shape[0]
  device_mesh = mesh_lib.make_mesh(cfg.mesh)
  rules = cfg.model.logical_rules
  tx = optim.make_optimizer(cfg.train)
  model_def, state, shardings = step_lib.init(cfg, device_mesh, tx)
  n_params = sum(x.size for x in jax.tree.leaves(state["params"]))
  batch = {"tokens": tokens_BxT, "positions": np.broadcast_to(np.arange(tokens_BxT.shape[1], dtype=np.int32),
                                                              tokens_BxT.shape).copy(),
           "loss_mask": np.ones(tokens_BxT.shape, np.float32)}
  batch_shardings = {k: mesh_lib.batch_sharding(device_mesh, rules, v.ndim) for k, v in batch.items()}
  train_step = step_lib.make_train_step(model_def, cfg.train, tx, shardings, batch_shardings, device_mesh)
  device_batch = mesh_lib.global_batch(batch, device_mesh, rules, tokens_BxT.shape[0])
  holder = [state]

  def run() -> None:
    holder[0], metrics = train_step(holder[0], device_batch)
    jax.block_until_ready((holder[0], metrics))

  return run, n_params


def torch_step(model_cfg, tokens_BxT: np.ndarray, compile_model: bool) -> tuple[Callable[[], None], int, str]:
  """The warmed-up PyTorch reference step, its parameter count and how it ran ("compiled",
  "eager", or "eager (torch.compile failed: ...)")."""
  from benchmarks import torch_gpt  # torch is optional: imported only here

  if compile_model:
    step, n_params = torch_gpt.make_step(model_cfg, tokens_BxT, compile_model=True)
    try:
      step()
      return step, n_params, "compiled"
    except Exception as e:  # noqa: BLE001 - any compiler failure falls back to eager
      reason = f"eager (torch.compile failed: {type(e).__name__})"
  else:
    reason = "eager"
  step, n_params = torch_gpt.make_step(model_cfg, tokens_BxT, compile_model=False)
  step()
  return step, n_params, reason


def torch_available() -> str | None:
  """None when torch imports, else the reason the comparison is skipped."""
  try:
    import torch  # noqa: F401
  except ImportError as e:
    return f"torch is not installed ({e}); the PyTorch comparison is skipped (pip install torch)"
  return None


def measure(model_cfg, batch: int, seq: int, rounds: int, *, with_torch: bool,
            compile_model: bool) -> list[Result]:
  """arithlab (and torch) on one model and dtype: warm-up, then `rounds` interleaved steps."""
  tokens_BxT = random_tokens(model_cfg, batch, seq)
  run, n_params = arithlab_step(model_cfg, tokens_BxT)
  run()  # compile
  run()
  fns, names, counts = [run], ["arithlab (jax.jit)"], [n_params]
  if with_torch:
    t_run, t_params, how = torch_step(model_cfg, tokens_BxT, compile_model)
    t_run()
    fns, names, counts = fns + [t_run], names + [f"torch {how}"], counts + [t_params]
  medians = common.interleaved_medians(fns, rounds)
  flops = batch * seq * common.train_flops_per_token(model_cfg, n_params, seq)
  return [Result(name, s, batch * seq, flops, p) for name, s, p in zip(names, medians, counts)]


def rows(model: str, dtype: str, shape: tuple[int, int], results: Sequence[Result], peak: float | None,
         rounds: int) -> list[list[str]]:
  """Table rows of one model and dtype; the last column compares with the torch row."""
  batch, seq = shape
  reference = results[-1] if len(results) > 1 else None
  out = []
  for r in results:
    achieved = r.flops / r.seconds
    ratio = f"{reference.seconds / r.seconds:.2f}x" if reference is not None else "-"
    out.append([model, dtype, f"{batch} x {seq}", f"{r.params / 1e6:.2f}M", r.framework, f"{1e3 * r.seconds:.1f}",
                f"{r.tokens / r.seconds:,.0f}", f"{achieved / 1e12:.3f}",
                f"{100 * achieved / peak:.1f}%" if peak else "n/a (CPU)", ratio, str(rounds)])
  return out


HEADER = ("model", "dtype", "batch x seq", "params", "framework", "step ms (median)", "tokens/s",
          "model TFLOP/s", "MFU", "speed vs torch", "timed steps")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--models", default="lee,shen", help="comma list of lee, shen, smoke")
  parser.add_argument("--dtypes", default="float32,bfloat16", help="comma list of compute dtypes")
  parser.add_argument("--batch", type=int, help="batch (default per model and backend, see SHAPES)")
  parser.add_argument("--seq", type=int, help="model input length T (default per model and backend)")
  parser.add_argument("--rounds", type=int, help="timed steps per framework (median reported)")
  parser.add_argument("--dropout", type=float, help="override the papers' dropout (Lee 0.2, Shen 0.1)")
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
  parser.add_argument("--no-compile", action="store_true", help="run the PyTorch reference eagerly")
  parser.add_argument("--smoke", action="store_true", help="a tiny model, batch 2 x 8, one timed step")
  args = parser.parse_args(argv)
  if args.smoke:
    args.models, args.batch, args.seq, args.rounds = "smoke", 2, 8, 1
  return args


def main(argv: Sequence[str] | None = None) -> list[list[str]]:
  """Prints the environment and the markdown table; returns the table rows."""
  args = parse(argv)
  backend = "gpu" if jax.default_backend() == "gpu" else "cpu"
  skip = "--no-torch given; the PyTorch comparison is skipped" if args.no_torch else torch_available()
  print(f"# {common.environment_line()}")
  if skip:
    print(f"# {skip}")
  table = []
  for model in args.models.split(","):
    default_batch, default_seq = SHAPES[backend].get(model, (2, 8))
    shape = (args.batch or default_batch, args.seq or default_seq)
    for dtype in args.dtypes.split(","):
      cfg = common.model_config(model, dtype)
      cfg.max_len = max(cfg.max_len, shape[1])  # the learned table covers the sequence
      if args.dropout is not None:
        cfg.dropout = args.dropout
      rounds = args.rounds or ROUNDS[backend]
      results = measure(cfg, *shape, rounds, with_torch=skip is None, compile_model=not args.no_compile)
      table += rows(model, dtype, shape, results, common.peak_flops(jax.devices()[0].device_kind, dtype), rounds)
      print(f"# done: {model} {dtype}", flush=True)
  print(common.markdown_table(HEADER, table))
  return table


if __name__ == "__main__":
  main()
