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
# # 03 · Positional encodings and length generalization
#
# Train the same small transformer on reversed addition with four encodings and ask
# each one to add longer numbers than it saw:
#
# | encoding | what it is | position IDs from the pipeline |
# |---|---|---|
# | `none` | NoPE: the causal mask only | sequential (unused) |
# | `rope` | rotary | sequential |
# | `randomized:rope` | Ruoss et al.: rotary at random positions | sorted random subset of {0..L-1} |
# | `abacus` | McLeish et al.: learned digit-significance table | significance of each digit, random offset in training |
#
# Then: exact match against operand length, and one attention map per encoding.
#
# Full mode: a few minutes per encoding on a CPU (faster on a GPU runtime). With
# `ARITHLAB_NOTEBOOK_SMALL=1` (the tests) tiny models of two of the encodings train for
# seconds and nothing is learned; the plots are the same.

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

SMALL = os.environ.get("ARITHLAB_NOTEBOOK_SMALL") == "1"  # tests: seconds-long runs
RUNS = Path(os.environ.get("ARITHLAB_RUNS", "runs/notebooks"))  # where the run directories go

# %%
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx
from matplotlib.ticker import MaxNLocator

from arithlab import config as config_lib
from arithlab import sweep
from arithlab.train import checkpoint as checkpoint_lib
from arithlab.train import loop
from arithlab.train import mesh as mesh_lib
from arithlab.train import optim
from arithlab.train import step as step_lib
from data_gen import pipeline

# %% [markdown]
# ## One config per encoding
#
# Everything but the encoding and its position rule is shared: operands and answer
# written least-significant digit first (`321+7654=0964`), one token per character,
# training on 1–`TRAIN_MAX`-digit operands, evaluation on every (len_0, len_1) cell up to
# `EVAL_MAX` digits. `sweep.encoding_axis` pairs each encoding with the position rule it
# reads, as the sweeps in `experiments/` do.

# %%
TRAIN_MAX, EVAL_MAX = (2, 3) if SMALL else (5, 10)


def base_config():
  """The shared run config (encoding rope)."""
  cfg = config_lib.default_config()
  cfg.data.update(task="addition", format="reverse_operands+reverse_answer", tokenizer="char", loss="answer")
  cfg.data.train_lengths = {"len_0": (1, TRAIN_MAX), "len_1": (1, TRAIN_MAX)}
  cfg.eval.lengths = {"len_0": (1, EVAL_MAX), "len_1": (1, EVAL_MAX)}
  cfg.model.update(layers=2, d_model=128, heads=4, d_ff=512, max_len=64)
  cfg.train.update(steps=3000, batch_size=128, lr=1e-3, warmup_steps=100, log_every=250)
  cfg.eval.update(every=0, n_per_cell=32, batch_size=512)  # evaluate once, at the end
  cfg.checkpoint.update(every=3000, keep=1, best_metric="val/exact_ood")
  if SMALL:
    cfg.model.update(d_model=32, d_ff=64)
    cfg.train.update(steps=10, batch_size=16, warmup_steps=2, log_every=5)
    cfg.eval.update(n_per_cell=4, batch_size=64, val_n_per_cell=4)
  return cfg


ENCODINGS = ["randomized:rope", "abacus"] if SMALL else ["none", "rope", "randomized:rope", "abacus"]
points = sweep.encoding_axis(ENCODINGS, max_offset=EVAL_MAX, randomized_len=256)
configs = {p.axes["encoding"]: sweep.apply_overrides(base_config(), p.overrides, p.name) for p in points}
for name, cfg in configs.items():
  cfg.name = name
  print(f"{name:<16} positions {cfg.data.positions!r} {dict(cfg.data.position_options)}")

# %% [markdown]
# ## Train
#
# `loop.train` runs each config to the end and evaluates the grid once; a finished run
# directory is reused rather than retrained (delete it to start over).

# %%
def last_grid(workdir: Path) -> dict:
  """The newest evaluation (grid_<step>.json) of a run directory."""
  return json.loads(sorted((workdir / "eval").glob("grid_*.json"))[-1].read_text())


workdirs = {p.axes["encoding"]: RUNS / "encodings" / sweep.slug(p) for p in points}
for name, cfg in configs.items():
  loop.train(cfg, str(workdirs[name]))
  grid = last_grid(workdirs[name])
  print(f"== {name}: exact match in distribution {100 * grid['eval/exact_id']:.1f}%, "
        f"beyond {100 * grid['eval/exact_ood']:.1f}%")

# %% [markdown]
# ## Exact match against length
#
# Each point is the cell with both operands of n digits (n + n addition); the shaded band
# is the training range.

# %%
def diagonal(grid: dict, key: str) -> tuple[list[int], list[float]]:
  """(n, value in %) of the cells with len_0 == len_1 == n."""
  cells = sorted((c["lengths"][0], c[key]) for c in grid["cells"] if c["lengths"][0] == c["lengths"][1])
  return [n for n, _ in cells], [100 * v for _, v in cells]


fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, (key, label) in zip(axes, (("exact", "exact match (%)"), ("digit", "per-digit accuracy (%)"))):
  for name, workdir in workdirs.items():
    ax.plot(*diagonal(last_grid(workdir), key), marker="o", label=name)
  ax.axvspan(0.5, TRAIN_MAX + 0.5, color="grey", alpha=0.15, label="training lengths")
  ax.set(xlabel="digits per operand (n + n addition)", ylabel=label, ylim=(-2, 102),
         title=f"{label.split(' (')[0]} vs length")
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].legend(fontsize=8)
fig.suptitle(f"Length generalization of {len(configs)} encodings")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Attention maps
#
# The trained model is restored from its checkpoint. `nnx.capture` with `method_outputs`
# records the output of every module call; the attention layer passes its softmax weights
# through its (here inactive) dropout module, so that output is the attention map
# `[B, heads, query, key]`. Shown: the last layer, averaged over heads, on one problem
# longer than any training problem, read teacher-forced (prompt and answer).

# %%
def restore_model(cfg, workdir: Path) -> nnx.Module:
  """The model of a run directory at its latest checkpoint."""
  mesh = mesh_lib.make_mesh(cfg.mesh)
  model_def, state, _ = step_lib.init(cfg, mesh, optim.make_optimizer(cfg.train))
  checkpointer = checkpoint_lib.Checkpointer(str(workdir / "checkpoints"), cfg.checkpoint, cfg.checkpoint.best_metric)
  state = checkpointer.restore(checkpointer.latest_step(), state)
  checkpointer.close()
  return model_def.merge(state["params"], state["rng_counts"])


def attention_map(model: nnx.Module, tokens_1xT: np.ndarray, positions_1xT: np.ndarray, layer: int) -> np.ndarray:
  """float32 [H, T, T]: the softmax weights of `layer` for one sequence."""
  _, captured = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(tokens_1xT, positions_1xT)
  (probs_1xHxTxT,) = captured["blocks"][layer]["attn"]["dropout"]["__call__"].get_value()
  return np.asarray(probs_1xHxTxT[0])


n = min(TRAIN_MAX + 2, EVAL_MAX)
fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 4.4))
for ax, (name, cfg) in zip(axes, configs.items()):
  cell = pipeline.eval_batch(cfg.data, (n, n), 1, seed=0)
  tokens = np.concatenate([cell["prompt"], cell["answer"]], axis=1)
  positions = np.concatenate([cell["prompt_positions"], cell["answer_positions"]], axis=1)
  real = tokens[0] != 0  # without PAD
  tokens, positions = tokens[:, real], positions[:, real]
  model = restore_model(cfg, workdirs[name])
  probs_TxT = attention_map(model, tokens, positions, layer=cfg.model.layers - 1).mean(axis=0)
  pieces = pipeline.build(cfg.data).tokenizer.pieces(tokens)[0]
  ax.imshow(probs_TxT, cmap="magma", vmin=0)
  ax.set_xticks(range(len(pieces)), pieces, fontsize=6, rotation=90)
  ax.set_yticks(range(len(pieces)), pieces, fontsize=6)
  ax.set(xlabel="key token", ylabel="query token", title=name)
fig.suptitle(f"Last-layer attention (mean over heads) on {n}+{n}-digit addition")
fig.tight_layout()
plt.show()
