"""The run record and the console: metrics.jsonl, config.json, env.json and a one-line progress bar.

Only process 0 writes files and prints (`is_writer`); every other process stays quiet.
metrics.jsonl is the source of truth; `MetricsWriter` also hands each row to its sinks
(TensorBoard, W&B: arithlab.train.writers).
"""

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Mapping, Protocol, Sequence, TextIO

import jax
import ml_collections

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections",
            "tensorflow-datasets")


def is_writer() -> bool:
  """True on the process that owns the run directory's files and the console (process 0)."""
  return jax.process_index() == 0


def write_json(path: str, obj: Any) -> None:
  """Writes `obj` as indented JSON, creating the parent directory: to path.tmp, then renamed
  over path, so a reader (or a kill) sees the old file or the new one, never a half-written one."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True, default=str)
    f.write("\n")
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_config(workdir: str, cfg: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as workdir/config.json."""
  write_json(os.path.join(workdir, "config.json"), cfg.to_dict())


def git_commit() -> str:
  """The commit of the checkout this package runs from, with '+dirty' for local changes; 'unknown' outside git."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return commit + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
  """Versions, devices, process layout and git commit: what env.json records."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return {
      "python": sys.version.split()[0],
      "platform": platform.platform(),
      "versions": versions,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "device_kind": jax.devices()[0].device_kind,
      "device_count": jax.device_count(),
      "local_device_count": jax.local_device_count(),
      "process_count": jax.process_count(),
      "git_commit": git_commit(),
  }


def write_env(workdir: str) -> None:
  """Writes `environment()` as workdir/env.json."""
  write_json(os.path.join(workdir, "env.json"), environment())


class Sink(Protocol):
  """Another place a run's rows go (arithlab.train.writers): each metrics row as scalars, and
  images (eval heatmaps) that metrics.jsonl does not hold."""

  def scalars(self, step: int, values: Mapping[str, float]) -> None: ...

  def image(self, step: int, tag: str, png_path: str) -> None: ...

  def close(self) -> None: ...


class MetricsWriter:
  """Appends one JSON object per call to workdir/metrics.jsonl (values made plain floats), and
  hands the same values to each of `sinks`."""

  def __init__(self, workdir: str, sinks: Sequence[Sink] = ()):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.sinks = list(sinks)
    os.makedirs(workdir, exist_ok=True)

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    values = {k: float(v) for k, v in metrics.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **values}) + "\n")
    for sink in self.sinks:
      sink.scalars(int(step), values)

  def write_image(self, step: int, tag: str, png_path: str) -> None:
    """Hands a PNG already in the run directory (an eval heatmap) to the sinks."""
    for sink in self.sinks:
      sink.image(int(step), tag, png_path)

  def close(self) -> None:
    for sink in self.sinks:
      sink.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
  """The rows of workdir/metrics.jsonl, in order."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def format_duration(seconds: float) -> str:
  """'1h02m', '3m07s' or '12s'."""
  s = int(round(seconds))
  if s >= 3600:
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
  if s >= 60:
    return f"{s // 60}m{s % 60:02d}s"
  return f"{s}s"


class Progress:
  """A one-line console bar: step, loss, exact match, tokens/s and ETA.

  On a terminal the line redraws in place (carriage return); elsewhere (logs, CI) each
  update is its own line.
  """

  def __init__(self, total_steps: int, start_step: int, stream: TextIO = sys.stdout, width: int = 20):
    self.total, self.start, self.stream, self.width = total_steps, start_step, stream, width
    self.t0 = time.perf_counter()
    self.inplace = stream.isatty()

  def line(self, step: int, metrics: Mapping[str, float]) -> str:
    """The bar's text for `step` given the latest metrics (loss, exact_match, tokens_per_s)."""
    done = step / max(self.total, 1)
    filled = int(round(self.width * done))
    elapsed = time.perf_counter() - self.t0
    rate = (step - self.start) / elapsed if elapsed > 0 else 0.0
    eta = format_duration((self.total - step) / rate) if rate > 0 else "?"
    return (f"step {step:>{len(str(self.total))}}/{self.total} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"loss {metrics['loss']:.4f}  em {100 * metrics['exact_match']:5.1f}%  "
            f"{metrics['tokens_per_s'] / 1000:6.1f}k tok/s  ETA {eta}")

  def update(self, step: int, metrics: Mapping[str, float]) -> None:
    end = "" if self.inplace else "\n"
    self.stream.write(("\r" if self.inplace else "") + self.line(step, metrics) + end)
    self.stream.flush()

  def message(self, text: str) -> None:
    """Prints `text` on its own lines without breaking the bar."""
    self.stream.write(("\n" if self.inplace else "") + text + "\n")
    self.stream.flush()

  def close(self) -> None:
    if self.inplace:
      self.stream.write("\n")
      self.stream.flush()
