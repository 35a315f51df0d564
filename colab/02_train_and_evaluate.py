# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Train and evaluate
#
# The quickstart (`experiments/quickstart.py`), trained right here: a 2-layer transformer
# learns reversed addition (`$128+367=594$`) on 1–3-digit operands. The loss curve updates
# live while it trains; then the length grid shows exact match per (len_0, len_1) cell,
# the 4-digit row and column being lengths it never saw.
#
# The same run from a shell: `python -m arithlab.main --config=experiments/quickstart.py
# --workdir=runs/quickstart`. Full run: a few minutes on a CPU; with
# `ARITHLAB_NOTEBOOK_SMALL=1` (the tests) a tiny model trains for a few seconds.

# %%
# Set-up. In Colab: clone arithlab (code and experiments/) and install it. Locally (inside a
# checkout after `pip install -e .`) this only moves to the repository root.
import os
import subprocess
import sys
from pathlib import Path

REPO_URL = "https://github.com/arithlab/arithlab"  # @param {type:"string"}


def find_root() -> Path | None:
  """The arithlab checkout at or above the working directory, or in ./arithlab."""
  candidates = (Path.cwd(), *Path.cwd().parents, Path.cwd() / "arithlab")
  return next((p for p in candidates if (p / "experiments").is_dir() and (p / "data_gen").is_dir()), None)


if find_root() is None and "google.colab" in sys.modules:
  subprocess.run(["git", "clone", "--depth=1", REPO_URL, "arithlab"], check=True)
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "arithlab"], check=True)
ROOT = find_root()
if ROOT is None:
  raise RuntimeError("open this notebook inside an arithlab checkout (pip install -e .), or in Colab")
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))  # importable at once, without restarting the kernel after the install

SMALL = os.environ.get("ARITHLAB_NOTEBOOK_SMALL") == "1"  # tests: a seconds-long run
RUNS = Path(os.environ.get("ARITHLAB_RUNS", "runs/notebooks"))  # where the run directories go

# %%
import concurrent.futures
import importlib.util
import json
import time

import matplotlib.pyplot as plt
from IPython.display import Image, display

from arithlab.train import loop

# %% [markdown]
# ## The config
#
# An experiment is one Python file whose `get_config(arg)` returns an `ml_collections`
# ConfigDict (sections model, data, train, eval, mesh, checkpoint). The small mode uses
# its `:smoke` argument with a few more steps, so the curve has points.

# %%
def load_config(path: str, arg: str | None = None):
  """`get_config(arg)` of an experiment file: what `--config=path:arg` loads."""
  spec = importlib.util.spec_from_file_location(Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


cfg = load_config("experiments/quickstart.py", "smoke" if SMALL else None)
if SMALL:
  cfg.train.update(steps=40, log_every=4)
  cfg.eval.update(every=20)
  cfg.checkpoint.update(every=20)
workdir = RUNS / ("quickstart_small" if SMALL else "quickstart")
print(f"data:  {cfg.data.task}, format {cfg.data.format!r}, tokenizer {cfg.data.tokenizer!r}, "
      f"positions {cfg.data.positions!r}, train lengths {dict(cfg.data.train_lengths)}")
print(f"model: {cfg.model.layers} layers, d_model {cfg.model.d_model}, {cfg.model.heads} heads, "
      f"encoding {cfg.model.encoding!r}")
print(f"train: {cfg.train.steps} steps of {cfg.train.batch_size} examples; eval grid {dict(cfg.eval.lengths)} "
      f"every {cfg.eval.every} steps; run directory {workdir}")

# %% [markdown]
# ## Training with a live loss curve
#
# `loop.train(cfg, workdir)` is the whole run (validate, build, train, evaluate,
# checkpoint). It runs in a background thread here while this cell redraws the curves from
# the run's `metrics.jsonl` every second. A finished run directory is resumed, not
# retrained: delete it to start over.

# %%
def read_rows(path: Path) -> list[dict]:
  """The complete lines of a metrics.jsonl that may still be being written."""
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def draw(rows: list[dict], loss_ax, em_ax) -> None:
  """Training loss, and exact match on training batches and on the eval grid, against step."""
  train = [r for r in rows if "loss" in r]
  evals = [r for r in rows if "eval/exact_id" in r]
  loss_ax.clear()
  em_ax.clear()
  loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], marker=".")
  loss_ax.set(yscale="log", xlabel="step", ylabel="training loss (per answer token)",
              title="loss")
  em_ax.plot([r["step"] for r in train], [100 * r["exact_match"] for r in train], label="training batches")
  for key, label in (("eval/exact_id", "eval: training lengths"), ("eval/exact_ood", "eval: longer")):
    points = [r for r in evals if key in r]
    em_ax.plot([r["step"] for r in points], [100 * r[key] for r in points], marker="o", label=label)
  em_ax.set(ylim=(-2, 102), xlabel="step", ylabel="exact match (%)", title="exact match")
  em_ax.legend(loc="upper left")


fig, (loss_ax, em_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
fig.suptitle(f"{cfg.name}: training")
handle = display(fig, display_id=True)
started = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
  run = pool.submit(loop.train, cfg, str(workdir))
  while not run.done():
    time.sleep(1.0)
    draw(read_rows(workdir / "metrics.jsonl"), loss_ax, em_ax)
    fig.tight_layout()
    handle.update(fig)
  run.result()  # re-raises an error of the run
rows = read_rows(workdir / "metrics.jsonl")
draw(rows, loss_ax, em_ax)
handle.update(fig)
plt.close(fig)
last = [r for r in rows if "loss" in r][-1]
print(f"step {last['step']}: loss {last['loss']:.4f} ({time.perf_counter() - started:.0f} s in this cell)")

# %% [markdown]
# ## The length grid
#
# Every evaluation wrote `eval/grid_<step>.{npz,json,png}` into the run directory: greedy
# decoding of `n_per_cell` held-out problems per cell, exact match of the whole answer.
# The red box is the training region; the cells outside it measure length generalization.

# %%
grids = sorted((workdir / "eval").glob("grid_*.json"))
last = json.loads(grids[-1].read_text())
print(f"step {last['step']}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in last.items() if k.startswith("eval/")))
display(Image(filename=str(grids[-1].with_suffix(".png"))))

# %% [markdown]
# The run directory is the record: the config, the environment (versions, devices, git
# commit), the metrics, checkpoints and every evaluation.

# %%
for path in sorted(workdir.iterdir()):
  print(path.name + ("/" if path.is_dir() else ""))
