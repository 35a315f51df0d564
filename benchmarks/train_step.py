"""Training throughput: arithlab's jitted train step beside a PyTorch nanoGPT of the same shape.

  python -m benchmarks.train_step                      # Lee 6L-6H-384 and Shen ~100M, fp32 and bf16
  python -m benchmarks.train_step --models=lee --dtypes=bfloat16 --batch=64 --seq=256 --profile
  python -m benchmarks.train_step --smoke              # seconds; what the tests run

For each model and compute dtype: the real step of `arithlab.train.step` (AdamW, clipping,
metrics; built by `step.init` / `make_train_step` as the training loop does) on a fixed
full batch of random tokens already on the device (no padding, every token a target), and
the PyTorch reference of `benchmarks/torch_gpt.py` on the same tokens (`torch.compile` unless
--no-compile; eager when compilation fails, said in the table). Both are warmed up (compiled)
first, then timed in alternation, one step each per round; the table gives the median.
--profile adds a table of the step's parts (forward, forward + backward) timed the same way.

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
# 256-token block); CPU defaults small enough for a few minutes.
SHAPES = {"gpu": {"lee": (256, 256), "shen": (32, 512)},
          "cpu": {"lee": (8, 128), "shen": (4, 128)}}
ROUNDS = {"gpu": 20, "cpu": 5}
PARTS = ("forward", "forward + backward")

Parts = dict[str, Callable[[], None]]


@dataclasses.dataclass(frozen=True)
class Result:
  """One framework on one model and dtype: median seconds per part, tokens and model FLOPs of a step."""

  framework: str
  seconds: dict[str, float]
  tokens: int
  flops: float
  params: int


def random_tokens(cfg, batch: int, seq: int) -> np.ndarray:
  """int32 [batch, seq + 1] uniform over the non-PAD ids (the step reads [:, :-1])."""
  return np.random.default_rng(0).integers(1, cfg.vocab_size, (batch, seq + 1)).astype(np.int32)


def arithlab_parts(model_cfg, tokens_BxT: np.ndarray) -> tuple[Parts, int]:
  """Blocking closures over arithlab's jitted train step on a fixed device batch ("step", each
  call advancing the donated train state), the forward loss and the gradients of the current
  parameters ("forward", "forward + backward"); and the parameter count."""
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
  forward = jax.jit(lambda p, r, b: step_lib.loss_sums(model_def.merge(p, r), b))
  gradients = jax.jit(lambda p, r, b: step_lib.grads_and_sums(model_def, p, r, b, 1))
  holder = [state]

  def step() -> None:
    holder[0], metrics = train_step(holder[0], device_batch)
    jax.block_until_ready((holder[0], metrics))

  def part(fn) -> Callable[[], None]:
    def run() -> None:
      with jax.set_mesh(device_mesh):
        jax.block_until_ready(fn(holder[0]["params"], holder[0]["rng_counts"], device_batch))
    return run

  return {"step": step, "forward": part(forward), "forward + backward": part(gradients)}, n_params


def torch_parts(model_cfg, tokens_BxT: np.ndarray, compile_model: bool) -> tuple[Parts, int, str]:
  """The PyTorch reference's closures (see torch_gpt.make_parts), warmed up on JAX's kind of
  device, its parameter count and how it ran ("compiled", "eager", or "eager (torch.compile
  failed: ...)"). On a CPU torch gets as many threads as this process has cores."""
  import torch  # torch is optional: imported only here

  from benchmarks import torch_gpt

  device = "cuda" if jax.default_backend() == "gpu" else "cpu"
  if device == "cpu":
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
  how = "eager"
  if compile_model:
    parts, n_params = torch_gpt.make_parts(model_cfg, tokens_BxT, device=device, compile_model=True)
    try:
      parts["step"]()
      return parts, n_params, "compiled"
    except Exception as e:  # noqa: BLE001 - any compiler failure falls back to eager
      how = f"eager (torch.compile failed: {type(e).__name__})"
  parts, n_params = torch_gpt.make_parts(model_cfg, tokens_BxT, device=device, compile_model=False)
  parts["step"]()
  return parts, n_params, how


def torch_available() -> str | None:
  """None when torch imports, else the reason the comparison is skipped."""
  try:
    import torch  # noqa: F401
  except ImportError as e:
    return f"torch is not installed ({e}); the PyTorch comparison is skipped (pip install torch)"
  return None


def measure(model_cfg, batch: int, seq: int, rounds: int, *, with_torch: bool, compile_model: bool,
            profile: bool) -> list[Result]:
  """arithlab (and torch) on one model and dtype: warm-up, then `rounds` interleaved calls of
  each timed part ("step", and with `profile` also PARTS)."""
  tokens_BxT = random_tokens(model_cfg, batch, seq)
  parts, n_params = arithlab_parts(model_cfg, tokens_BxT)
  frameworks = [("arithlab (jax.jit)", parts, n_params)]
  if with_torch:
    t_parts, t_params, how = torch_parts(model_cfg, tokens_BxT, compile_model)
    frameworks.append((f"torch {how}", t_parts, t_params))
  names = ("step",) + (PARTS if profile else ())
  fns = [parts[name] for _, parts, _ in frameworks for name in names]
  for fn in fns:  # compile, then one more warm call
    fn()
    fn()
  medians = iter(common.interleaved_medians(fns, rounds))
  flops = batch * seq * common.train_flops_per_token(model_cfg, n_params, seq)
  return [Result(framework, {name: next(medians) for name in names}, batch * seq, flops, n)
          for framework, _, n in frameworks]


def rows(model: str, dtype: str, shape: tuple[int, int], results: Sequence[Result], peak: float | None,
         rounds: int) -> list[list[str]]:
  """Table rows of one model and dtype; the speed column compares with the torch row (last)."""
  batch, seq = shape
  reference = results[-1].seconds["step"] if len(results) > 1 else None
  out = []
  for r in results:
    achieved = r.flops / r.seconds["step"]
    out.append([model, dtype, f"{batch} x {seq}", f"{r.params / 1e6:.2f}M", r.framework,
                f"{1e3 * r.seconds['step']:.1f}", f"{r.tokens / r.seconds['step']:,.0f}", f"{achieved / 1e12:.3f}",
                f"{100 * achieved / peak:.1f}%" if peak else "n/a (CPU)",
                f"{reference / r.seconds['step']:.2f}x" if reference else "-", str(rounds)])
  return out


def profile_rows(model: str, dtype: str, results: Sequence[Result]) -> list[list[str]]:
  """Median milliseconds of each part of the step, per framework."""
  return [[model, dtype, r.framework] + [f"{1e3 * r.seconds[name]:.1f}" for name in PARTS + ("step",)]
          for r in results]


HEADER = ("model", "dtype", "batch x seq", "params", "framework", "step ms (median)", "tokens/s",
          "model TFLOP/s", "MFU", "speed vs torch", "timed steps")
PROFILE_HEADER = ("model", "dtype", "framework", "forward ms", "forward + backward ms", "step ms")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--models", default="lee,shen", help="comma list of lee, shen, smoke")
  parser.add_argument("--dtypes", default="float32,bfloat16", help="comma list of compute dtypes")
  parser.add_argument("--batch", type=int, help="batch (default per model and backend, see SHAPES)")
  parser.add_argument("--seq", type=int, help="model input length T (default per model and backend)")
  parser.add_argument("--rounds", type=int, help="timed steps per framework (median reported)")
  parser.add_argument("--dropout", type=float, help="override the papers' dropout (Lee 0.2, Shen 0.1)")
  parser.add_argument("--cores", type=int, help="pin to this many CPU cores (0: all; default: 1, or all when "
                      "a JAX GPU plugin is installed)")
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
  parser.add_argument("--no-compile", action="store_true", help="run the PyTorch reference eagerly")
  parser.add_argument("--profile", action="store_true", help="also time the forward and backward passes")
  parser.add_argument("--smoke", action="store_true", help="a tiny model, batch 2 x 8, one timed step")
  args = parser.parse_args(argv)
  if args.smoke:
    args.models, args.batch, args.seq, args.rounds = "smoke", 2, 8, 1
  return args


def main(argv: Sequence[str] | None = None) -> list[list[str]]:
  """Prints the environment and the markdown table(s); returns the main table's rows."""
  args = parse(argv)
  pinned = common.pin_cores(args.cores)
  backend = "gpu" if jax.default_backend() == "gpu" else "cpu"
  skip = "--no-torch given; the PyTorch comparison is skipped" if args.no_torch else torch_available()
  print(f"# {common.environment_line()}; {pinned}")
  if skip:
    print(f"# {skip}")
  print(common.markdown_header(HEADER), flush=True)
  table, profiled = [], []
  for model in args.models.split(","):
    default_batch, default_seq = SHAPES[backend].get(model, (2, 8))
    shape = (args.batch or default_batch, args.seq or default_seq)
    for dtype in args.dtypes.split(","):
      cfg = common.model_config(model, dtype)
      cfg.max_len = max(cfg.max_len, shape[1])  # the learned table covers the sequence
      if args.dropout is not None:
        cfg.dropout = args.dropout
      rounds = args.rounds or ROUNDS[backend]
      results = measure(cfg, *shape, rounds, with_torch=skip is None, compile_model=not args.no_compile,
                        profile=args.profile)
      new = rows(model, dtype, shape, results, common.peak_flops(jax.devices()[0].device_kind, dtype), rounds)
      print("\n".join(common.markdown_row(row) for row in new), flush=True)
      table += new
      profiled += profile_rows(model, dtype, results) if args.profile else []
  if args.profile:
    print("\n" + common.markdown_header(PROFILE_HEADER))
    print("\n".join(common.markdown_row(row) for row in profiled))
  return table


if __name__ == "__main__":
  main()
