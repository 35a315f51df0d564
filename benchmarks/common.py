"""What the training, decoding and grid benchmarks share: the environment line, interleaved
median timing, markdown tables, device peak FLOP/s, the benchmarked model shapes and FLOP counts.

Timing never happens in tests; the scripts print markdown tables to paste into RESULTS.md.
"""

import importlib.metadata
import os
import statistics
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
from flax import nnx

from arithlab import models
from arithlab.train import mesh as mesh_lib
from arithlab.train import metrics
from arithlab.train import step as step_lib
from data_gen import pipeline

# Dense peak TFLOP/s from the vendors' data sheets (no sparsity). "float32" is the TF32 tensor-core
# peak on GPUs: JAX's default matmul precision and PyTorch with `set_float32_matmul_precision("high")`
# (which the torch reference sets) both run float32 matmuls as TF32 there.
PEAK_TFLOPS = {  # device_kind substring -> {compute dtype: TFLOP/s}; the first match wins
    "H200": {"bfloat16": 989.4, "float32": 494.7},
    "H100 PCIe": {"bfloat16": 756.0, "float32": 378.0},
    "H100": {"bfloat16": 989.4, "float32": 494.7},  # SXM
    "A100": {"bfloat16": 312.0, "float32": 156.0},
}

SMOKE_SHAPE = dict(layers=1, d_model=32, heads=2, d_ff=64, dropout=0.0)  # `--smoke` runs


def peak_flops(device_kind: str, dtype: str) -> float | None:
  """The device's dense peak FLOP/s for matmuls in `dtype`, or None when unknown (CPUs)."""
  for name, peaks in PEAK_TFLOPS.items():
    if name in device_kind:
      return peaks[dtype] * 1e12
  return None


def pin_cores(cores: int | None) -> str:
  """Pins this process to the first `cores` CPUs it may run on (0: leave it free; None: one core
  unless a JAX GPU plugin is installed); returns a note for the table head. Call it before
  anything asks JAX for its devices: the CPU backend sizes its thread pool to the cores then.

  On a CPU shared with other jobs, threads that outnumber the free cores mostly wait on each
  other (PyTorch's OpenMP pool most of all), so one pinned core per run gives comparable figures.
  """
  if cores is None:
    gpu_plugin = any((d.metadata["Name"] or "").lower().startswith("jax-cuda")
                     for d in importlib.metadata.distributions())
    cores = 0 if gpu_plugin else 1
  if not hasattr(os, "sched_setaffinity"):
    return f"not pinned ({os.cpu_count()} cores)"
  if cores <= 0:
    return f"not pinned by the script; may run on CPUs {sorted(os.sched_getaffinity(0))}"
  cpus = sorted(os.sched_getaffinity(0))[:cores]
  os.sched_setaffinity(0, cpus)
  return f"pinned to {len(cpus)} core(s) {cpus}"


def versions() -> dict[str, str]:
  """Installed versions of the packages the benchmarks compare ('absent' when not installed)."""
  out = {}
  for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = "absent"
  return out


def environment_line() -> str:
  """One line for the head of a results table: date, device, cores, load, versions, commit."""
  env = metrics.environment()
  load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
  packages = " ".join(f"{k} {v}" for k, v in versions().items())
  return (f"{time.strftime('%Y-%m-%d %H:%M')}; device {env['device_kind']} x{env['device_count']} "
          f"({env['backend']}), {os.cpu_count()} CPU cores, load average {load}; python {env['python']}; "
          f"{packages}; commit {env['git_commit'][:12]}")


def markdown_header(header: Sequence[str]) -> str:
  """The head of a markdown table; the first column left-aligned, the others right-aligned."""
  return "| " + " | ".join(header) + " |\n|---|" + "---:|" * (len(header) - 1)


def markdown_row(row: Sequence[Any]) -> str:
  return "| " + " | ".join(str(v) for v in row) + " |"


def seconds(fn: Callable[[], Any]) -> float:
  """Wall seconds of one call of `fn`, which must block until its work is done."""
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def interleaved_medians(fns: Sequence[Callable[[], Any]], rounds: int) -> list[float]:
  """Median seconds per call of each blocking fn over `rounds` rounds; every round calls each
  fn once, in turn, so that all of them see the same machine load."""
  times = [[] for _ in fns]
  for _ in range(rounds):
    for fn, out in zip(fns, times):
      out.append(seconds(fn))
  return [statistics.median(t) for t in times]


def vocab_size() -> int:
  """The vocabulary of the default data config's tokenizer (one token per character)."""
  return pipeline.build(pipeline.default_data_config()).tokenizer.vocab_size


def model_config(name: str, dtype: str, *, max_len: int | None = None) -> ml_collections.ConfigDict:
  """The benchmarked shapes: "lee" (6L-6H-384, ~10.6M), "shen" (12L-12H-768, ~100M), "smoke"
  (1 layer, width 32). Learned positions, as in the papers; max_len widens the table."""
  if name not in ("lee", "shen", "smoke"):
    raise ValueError(f"model {name!r} unknown; choose one of: lee, shen, smoke")
  vocab = vocab_size()
  cfg = models.shen_config(vocab) if name == "shen" else models.lee_config(vocab)
  if name == "smoke":
    cfg.update(**SMOKE_SHAPE)
  cfg.dtype = dtype
  if max_len is not None:
    cfg.max_len = max_len
  return cfg


def matmul_params(cfg: ml_collections.ConfigDict, n_params: int) -> int:
  """Parameters that take part in a matmul per token: all but the learned position table (a
  lookup). The tied token embedding counts once, as the logits projection (nanoGPT's count)."""
  return n_params - (cfg.max_len * cfg.d_model if cfg.encoding == "learned" else 0)


def train_flops_per_token(cfg: ml_collections.ConfigDict, n_params: int, seq: int) -> float:
  """Model FLOPs of one training token (forward + backward), PaLM appendix B / nanoGPT:
  6 N + 12 L T d_model with N = `matmul_params` and T the sequence length (attention counted
  in full, without the causal half)."""
  return 6 * matmul_params(cfg, n_params) + 12 * cfg.layers * seq * cfg.d_model


def build_split(cfg: ml_collections.ConfigDict, seed: int = 0):
  """Builds the model on a 1-device-per-data-shard mesh: (mesh, ModelDef, params, rng_counts,
  parameter count), params and rng_counts as pure dicts (what `arithlab.train.decode` takes)."""
  device_mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1)))
  with jax.set_mesh(device_mesh):
    model = models.build(cfg, rngs=nnx.Rngs(seed))
  n_params = models.param_count(model)
  model_def, params, rng_counts = step_lib.split(model)
  return device_mesh, model_def, nnx.to_pure_dict(params), nnx.to_pure_dict(rng_counts), n_params
