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
# # 01 · A tour of the data
#
# One example from digits to what the model sees: a **task** draws a problem, a **format**
# writes it as text, a **tokenizer** cuts the text into token ids, and a **position rule**
# gives every token its position ID. All of it is `data_gen`: pure NumPy, no JAX.
#
# Runs in a few seconds on a CPU, in Colab or locally.

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

# %%
import matplotlib.pyplot as plt
import numpy as np

from data_gen import formats, pipeline, positions, show, tasks, tokenizers
from data_gen.text import Number, Problem

# %% [markdown]
# ## Tasks
#
# Every registered task, one problem each, written in the `plain` format. A task has
# length axes (an evaluation grid's axes); here every axis is 3, except the 8-symbol
# bucket-sort string.

# %%
rng = np.random.default_rng(0)
LENGTHS = {"length": 8}  # per axis; the rest are 3
for name in tasks.TASKS:
  task = tasks.build(name)
  lengths_1xK = np.array([[LENGTHS.get(axis, 3) for axis in task.length_axes]])
  text = formats.render(task.sample(rng, lengths_1xK), "plain", rng)
  print(f"{name:<20} axes {str(task.length_axes):<22} {text.strings()[0]!r}")

# %% [markdown]
# ## Formats
#
# A format is a `+`-joined string of switches. Each switch alone on Lee et al.'s
# `128+367` (`pad<N>` as `pad8`), then two combinations papers use.

# %%
problem = Problem((Number.from_ints([128]), Number.from_ints([367])), (Number.from_ints([495]),), "+")
switches = [s.replace("<N>", "8") for s in formats.SWITCHES]
for spec in switches + ["reverse_answer+dollar", "pad15+reverse_answer"]:
  text = formats.render(problem, spec, np.random.default_rng(0))
  print(f"--- {spec}\n{text.strings()[0]}")

# %% [markdown]
# Scratchpads exist for multiplication too (Lee et al.'s detailed scratchpad):

# %%
product = Problem((Number.from_ints([12]), Number.from_ints([34])), (Number.from_ints([12 * 34]),), "*")
print(formats.render(product, "scratchpad_detailed").strings()[0])

# %% [markdown]
# ## Tokenizers
#
# Every tokenizer on one problem (Singh & Strouse's 7-digit addends); `|` separates
# tokens. Left-to-right chunks cut `8302080` as `830|208|0`, right-to-left ones as
# commas would: `8|302|080`.

# %%
text = formats.render(Problem((Number.from_ints([8302080]), Number.from_ints([1234567])),
                              (Number.from_ints([8302080 + 1234567]),), "+"), "plain")
for name in tokenizers.TOKENIZERS:
  tokenizer = tokenizers.TOKENIZERS.get(name)
  pieces = tokenizer.pieces(tokenizer.encode(text).tokens_BxT)[0]
  print(f"{name:<11} vocab {tokenizer.vocab_size:>5}  {len(pieces):>2} tokens  {'|'.join(pieces)}")

# %% [markdown]
# ## Position IDs
#
# Positions are data: the pipeline hands the model an ID per token, and the encoding only
# consumes it. One example, `123+4567` with operands and answer reversed (least
# significant digit first: `321+7654=0964`), under each rule, at test time and with the
# training-time randomization (Abacus: one offset per batch; coupling: a random start per
# example; randomized: a sorted random subset of {0..L-1}). Colours are scaled per row.

# %%
def encode_ids(rule: str, options: dict, problem: Problem, spec: str, *, train: bool, seed: int = 1):
  """(token strings, int32 ids [T(, L)]) of the one-row `problem` under a position rule (T: its tokens,
  without padding)."""
  cfg = pipeline.default_data_config()
  cfg.update(format=spec, positions=rule)
  cfg.position_options = options
  pipe = pipeline.build(cfg)
  tb, ids_BxT = pipeline.encode(pipe, pipe.sources[0], problem, np.random.default_rng(seed), train=train)
  length = int(tb.length_B[0])
  return pipe.tokenizer.pieces(tb.tokens_BxT, tb.length_B)[0], ids_BxT[0, :length]


def draw_ids(ax, pieces: list[str], rows: dict[str, np.ndarray], title: str) -> None:
  """A coloured table: one row per rule, one column per token, each cell its position ID."""
  ids_RxT = np.stack(list(rows.values()))
  scaled = ids_RxT / np.maximum(ids_RxT.max(axis=1, keepdims=True), 1)
  ax.imshow(scaled, cmap="viridis", aspect="auto", vmin=0, vmax=1)
  for r, c in np.ndindex(ids_RxT.shape):
    ax.text(c, r, str(ids_RxT[r, c]), ha="center", va="center", fontsize=8,
            color="black" if scaled[r, c] > 0.5 else "white")
  ax.set_xticks(range(len(pieces)), pieces, fontsize=8)
  ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
  ax.set_xlabel("token")
  ax.set_ylabel("position rule")
  ax.set_title(title)


example = Problem((Number.from_ints([123]), Number.from_ints([4567])), (Number.from_ints([4690]),), "+")
RULES = {"sequential": {}, "abacus": {}, "coupling": {"max_pos": 20}, "randomized": {"L": 64}}
rows = {}
for rule, options in RULES.items():
  for train in (False, True):
    if rule == "sequential" and train:
      continue  # no training-time randomization
    pieces, ids = encode_ids(rule, options, example, "reverse_operands+reverse_answer", train=train)
    rows[f"{rule} ({'train' if train else 'test'})"] = ids
fig, ax = plt.subplots(figsize=(10, 3.4))
draw_ids(ax, pieces, rows, "Position IDs of 123+4567 (reversed) under each rule")
fig.tight_layout()
plt.show()

# %% [markdown]
# The papers' own examples: McLeish et al.'s Abacus `3 2 1 + 7 6 5 4 = 0 9 6 4` →
# `1 2 3 0 1 2 3 4 0 1 2 3 4`, and Cho et al.'s coupling of `0123+4567=09640` (operands
# zero-padded, answer padded and reversed) → `5 4 3 2 1 5 4 3 2 1 2 3 4 5 6`. With
# `levels=2` coupling adds a second level: which operand (or scratchpad step) a digit
# belongs to, here for three operands.

# %%
three = Problem((Number.from_ints([12]), Number.from_ints([345]), Number.from_ints([67])),
                (Number.from_ints([12 + 345 + 67]),), "+")
fig, axes = plt.subplots(3, 1, figsize=(10, 5.5))
pieces, ids = encode_ids("abacus", {}, example, "reverse_operands+reverse_answer", train=False)
draw_ids(axes[0], pieces, {"abacus": ids}, "Abacus (McLeish et al.)")
pieces, ids = encode_ids("coupling", {"max_pos": 20}, example, "pad+reverse_answer", train=False)
draw_ids(axes[1], pieces, {"coupling": ids}, "Position coupling (Cho et al.)")
pieces, ids = encode_ids("coupling", {"max_pos": 20, "levels": 2, "max_pos_number": 8}, three,
                         "pad+reverse_answer", train=False)
draw_ids(axes[2], pieces, {"level 1": ids[:, 0], "level 2": ids[:, 1]}, "Coupling with levels=2, three operands")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A training batch
#
# `pipeline.sample_batch` is stateless: the batch of a step depends only on the config,
# the seed, the step and the process. Rows are `BOS, prompt, answer, EOS, PAD…`; the loss
# mask marks the answer (and EOS). `data_gen.show` prints what the model sees (the same as
# `python -m data_gen.show`).

# %%
cfg = pipeline.default_data_config()
cfg.update(format="reverse_operands+reverse_answer+dollar", positions="abacus")
cfg.train_lengths = {"len_0": (1, 6), "len_1": (1, 6)}
batch = pipeline.sample_batch(cfg, seed=0, step=0, batch_size=16)
tokenizer = pipeline.build(cfg).tokenizer
print({k: (v.shape, v.dtype.name) for k, v in batch.items()})
print(show.render(batch, tokenizer, 3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
titles = {"positions": "Abacus position IDs (0 at PAD)", "loss_mask": "loss mask (1 = trained on)"}
for ax, (key, title) in zip(axes, titles.items()):
  image = ax.imshow(batch[key], cmap="viridis", aspect="auto", interpolation="nearest")
  ax.set(xlabel="token index t", ylabel="row of the batch", title=title)
  fig.colorbar(image, ax=ax)
fig.suptitle("One training batch of 16 rows")
fig.tight_layout()
plt.show()

# %% [markdown]
# Task hints (Awasthi & Gupta) mix an auxiliary task into every batch; each example starts
# with a task-prefix token (`<task:0>` the main task, `<task:1>` the hint).

# %%
hinted = pipeline.default_data_config()
hinted.update(task="sorting", format="plain", hints="successor_hint:0.5")
hinted.train_lengths = {"count": (2, 5), "digits": (1, 2)}
print(show.render(pipeline.sample_batch(hinted, seed=0, step=0, batch_size=4), pipeline.build(hinted).tokenizer, 4))

# %% [markdown]
# ## An evaluation cell
#
# Evaluation uses exact-length cells of held-out problems (never in training data). The
# prompt is left-padded so that every row's answer starts at the same step of greedy
# decoding; the answer's position IDs are known in advance, since rules never look at the
# answer's digits.

# %%
cell = pipeline.eval_batch(cfg, (2, 5), 3, seed=0)
for b in range(3):
  print(f"prompt {tokenizer.decode(cell['prompt'][b:b + 1])[0]!r:<24} answer "
        f"{tokenizer.decode(cell['answer'][b:b + 1])[0]!r:<12} answer positions {cell['answer_positions'][b].tolist()}")
