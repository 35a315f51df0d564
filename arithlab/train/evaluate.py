"""Length grid (docs/evaluation.md#evaluation-protocol): greedy decoding on exact-length cells, scored per cell.

A grid maps each cell (one length per length axis, e.g. (len_a, len_b)) to an eval batch
of N problems (`data_gen.pipeline.eval_grid`, or a frozen TFDS set from
`data_gen.tfds_eval.read_eval_set`). Cells of similar widths are stacked into one batch
(prompts left-padded, answers right-padded to the group's widths rounded up to a multiple of
BUCKET tokens), so a grid compiles the decoder once per group and a short cell decodes only
the answer steps its group needs; each group is decoded in chunks of `eval.batch_size` rows.

Scoring. The headline exact match is the final answer's: the answer tokens an eval batch's
`final_mask` marks (see `data_gen.pipeline.eval_arrays`). Without a scratchpad that is the whole
answer, and a row is right when every answer token up to and including EOS is reproduced. After
a scratchpad it is the final answer with the characters that introduce it (`.\n495`), and a row
is right when the generated text ends, at its first EOS, with exactly those tokens: a scratchpad
of another length or with a wrong intermediate step does not matter, an answer not introduced
the same way does. `exact_target` is the stricter whole-target match (the scratchpad too).
Per-digit accuracy counts the answer's digit tokens, compared after the same alignment. Region
means pool the problems of their cells, so each comes with a 95% Wilson interval
(`wilson_interval`). Results are saved to workdir/eval/ as `grid_<step>.npz`, `.json` and a
heatmap `.png`, and printed as a text grid.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from arithlab.train.step import PAD_ID
from data_gen.grid import in_box
from data_gen.tokenizers import EOS_ID

Cell = tuple[int, ...]
Batch = dict[str, np.ndarray]
FIELDS = ("prompt", "prompt_positions", "answer", "answer_positions", "digit_mask", "final_mask")
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
  """The Wilson score interval (lower, upper) of a binomial proportion successes / n; z = 1.96
  gives 95%. n = 0 gives (0, 1): nothing is known."""
  if n <= 0:
    return 0.0, 1.0
  p = successes / n
  center = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
  return float(max(0.0, center - half)), float(min(1.0, center + half))


def format_interval(value: float, n: int) -> str:
  """'87.3% [85.1, 89.2]': a proportion over n problems with its 95% Wilson interval, in %."""
  lo, hi = wilson_interval(value * n, n)
  return f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


@dataclasses.dataclass(frozen=True)
class GridResult:
  """Scores of one evaluation.

  axes: the K length axes' names (the task's). cells: C cells (tuples of K lengths).
  exact_C, digit_C: float64 final-answer exact match and per-digit accuracy per cell. count_C:
  int problems per cell. in_box_C: bool, cell inside the training lengths `train_ranges`
  ((min, max) per axis). step: the train step evaluated. exact_target_C: float64 whole-target
  exact match per cell (None: equal to exact_C, as for formats without a scratchpad).
  """

  axes: list[str]
  cells: list[Cell]
  exact_C: np.ndarray
  digit_C: np.ndarray
  count_C: np.ndarray
  in_box_C: np.ndarray
  train_ranges: list[tuple[int, int]]
  step: int
  exact_target_C: np.ndarray | None = None

  def regions(self) -> dict[str, np.ndarray]:
    """bool [C] per region: "all", "id" (inside the training lengths), "ood" (outside); a
    region without cells is left out."""
    where = {"all": np.ones(len(self.cells), bool), "id": self.in_box_C, "ood": ~self.in_box_C}
    return {region: w for region, w in where.items() if w.any()}

  def summary(self, prefix: str = "eval") -> dict[str, float]:
    """Per region (_id, _ood: see `regions`) the final-answer exact match, the whole-target
    exact match (exact_target) and the digit accuracy, each pooled over the region's problems
    (cells weighted by their counts); and exact_all, exact_target_all. Keys "<prefix>/...";
    a region without cells has no keys."""
    target_C = self.exact_C if self.exact_target_C is None else self.exact_target_C
    out = {}
    for region, where in self.regions().items():
      mean = lambda values_C: float(np.average(values_C[where], weights=np.maximum(self.count_C[where], 1e-12)))
      out[f"{prefix}/exact_{region}"] = mean(self.exact_C)
      out[f"{prefix}/exact_target_{region}"] = mean(target_C)
      if region != "all":
        out[f"{prefix}/digit_{region}"] = mean(self.digit_C)
    return out

  def problems(self, region: str) -> int:
    """How many problems a region ("all", "id", "ood") pools."""
    return int(self.count_C[self.regions()[region]].sum())


SUMMARY_KEYS = ("eval/exact_id", "eval/exact_ood", "eval/digit_id", "eval/digit_ood", "eval/exact_all",
                "eval/exact_target_id", "eval/exact_target_ood", "eval/exact_target_all")
VAL_KEYS = tuple(key.replace("eval/", "val/", 1) for key in SUMMARY_KEYS)  # the same on the validation set


def final_and_best(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any]:
  """{"best_metric": metric, "final": the last evaluation row, "best": the evaluation row with
  the highest `metric` (a validation key; the earliest of equal ones), or None without one}: the
  test-grid scores of the final and of the best-by-validation checkpoint (rows as metrics.jsonl
  holds them: "step" and the summary keys)."""
  evaluations = [row for row in rows if any(key in row for key in SUMMARY_KEYS)]
  chosen = [row for row in evaluations if metric in row]
  return {"best_metric": metric, "final": evaluations[-1] if evaluations else None,
          "best": max(chosen, key=lambda row: (row[metric], -row["step"]), default=None)}


def _pad_to(x: np.ndarray, width: int, *, left: bool) -> np.ndarray:
  pad = [(0, 0)] * x.ndim
  pad[1] = (width - x.shape[1], 0) if left else (0, width - x.shape[1])
  return np.pad(x, pad)


BUCKET = 16  # cells are decoded in groups whose prompt and answer widths round up to the same multiple


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def bucket_cells(grid: Mapping[Cell, Batch], bucket: int | None = BUCKET) -> dict[tuple[int, int], list[int]]:
  """Indices into `list(grid)` grouped by their padded widths (P, A): the cell's prompt and
  answer widths rounded up to a multiple of `bucket`, but not past the grid's widest (None:
  every cell in one group at the widest); narrowest answers first. A group is one compiled
  decoder shape, whose rows decode A answer steps."""
  widest_prompt = max(b["prompt"].shape[1] for b in grid.values())
  widest_answer = max(b["answer"].shape[1] for b in grid.values())
  groups: dict[tuple[int, int], list[int]] = {}
  for i, b in enumerate(grid.values()):
    key = (widest_prompt, widest_answer) if bucket is None else (
        min(_round_up(b["prompt"].shape[1], bucket), widest_prompt),
        min(_round_up(b["answer"].shape[1], bucket), widest_answer))
    groups.setdefault(key, []).append(i)
  return dict(sorted(groups.items(), key=lambda item: item[0][::-1]))


def stack_cells(grid: Mapping[Cell, Batch], widths: tuple[int, int] | None = None) -> tuple[Batch, np.ndarray]:
  """All cells as one batch: prompts (and their positions) left-padded to the widest prompt P,
  answers, answer positions, digit and final masks right-padded to the widest answer A, or to
  widths = (P, A) when given (at least the widest).

  Returns (batch with N = sum of cell sizes rows, cell index int64 [N] into `list(grid)`).
  """
  batches = list(grid.values())
  prompt_width, answer_width = widths or (max(b["prompt"].shape[1] for b in batches),
                                          max(b["answer"].shape[1] for b in batches))
  stacked = {
      key: np.concatenate([_pad_to(np.asarray(b[key]), prompt_width if key.startswith("prompt") else answer_width,
                                   left=key.startswith("prompt")) for b in batches])
      for key in FIELDS
  }
  index_N = np.concatenate([np.full(b["prompt"].shape[0], c) for c, b in enumerate(batches)])
  return stacked, index_N


def decode_rows(decode: Callable[[Batch], jax.Array], batch: Batch, chunk: int, row_multiple: int = 1) -> np.ndarray:
  """Runs `decode` (NumPy eval batch -> tokens, e.g. a jitted batch-sharded decoder) over the rows
  of `batch` in chunks of `chunk` rows; a last, shorter chunk is padded (by repeating row 0) to
  a multiple of `row_multiple` (the data-parallel size, which `chunk` is a multiple of).

  Returns the generated tokens, int32 [N, A], on every process.
  """
  rows = batch["prompt"].shape[0]
  out = []
  for start in range(0, rows, chunk):
    take_M = np.arange(start, start + min(chunk, _round_up(rows - start, row_multiple)))
    take_M = np.where(take_M < rows, take_M, 0)
    part = {k: v[take_M] for k, v in batch.items()}
    tokens = decode(part)
    out.append(np.asarray(multihost_utils.process_allgather(tokens, tiled=True))[: rows - start])
  return np.concatenate(out)


def align_final(generated_NxA: np.ndarray, batch: Batch) -> np.ndarray:
  """The generated tokens shifted so that each row's first EOS sits where the target's EOS is,
  for rows whose final answer follows a scratchpad (final_mask not starting at the answer's
  first token); other rows, and rows without EOS, as generated. int [N, A] (-1 where the
  shift leaves no generated token)."""
  answer_NxA, final_NxA = batch["answer"], batch["final_mask"].astype(bool)
  width = answer_NxA.shape[1]
  eos_NxA = generated_NxA == EOS_ID
  after_scratchpad_N = final_NxA.argmax(axis=1) > 0
  shift_N = np.where(after_scratchpad_N & eos_NxA.any(axis=1),
                     eos_NxA.argmax(axis=1) - (answer_NxA == EOS_ID).argmax(axis=1), 0)
  source_NxA = np.arange(width)[None, :] + shift_N[:, None]
  inside_NxA = (source_NxA >= 0) & (source_NxA < width)
  shifted_NxA = np.take_along_axis(generated_NxA, np.clip(source_NxA, 0, width - 1), axis=1)
  return np.where(inside_NxA, shifted_NxA, -1)


def score(generated_NxA: np.ndarray, batch: Batch, index_N: np.ndarray, cells: int) -> tuple[np.ndarray, ...]:
  """Per-cell (final-answer exact match, per-digit accuracy, count, whole-target exact match) of
  generated tokens against batch["answer"] (see the module docstring).

  generated_NxA: int32. batch: the stacked grid. index_N: cell of each row. Returns float64 [C],
  float64 [C], int64 [C], float64 [C].
  """
  answer_NxA = batch["answer"]
  target_N = np.all((generated_NxA == answer_NxA) | (answer_NxA == PAD_ID), axis=1)
  hit_NxA = align_final(generated_NxA, batch) == answer_NxA
  exact_N = np.all(hit_NxA | ~batch["final_mask"].astype(bool), axis=1)
  digit_mask_NxA = batch["digit_mask"].astype(bool)
  count_C = np.bincount(index_N, minlength=cells)
  per_cell = lambda values_N: np.bincount(index_N, weights=values_N, minlength=cells) / np.maximum(count_C, 1)
  digits_C = np.bincount(index_N, weights=digit_mask_NxA.sum(axis=1), minlength=cells)
  digit_hits_C = np.bincount(index_N, weights=(hit_NxA & digit_mask_NxA).sum(axis=1), minlength=cells)
  return per_cell(exact_N), digit_hits_C / np.maximum(digits_C, 1), count_C, per_cell(target_N)


def evaluate(decode: Callable[[Batch], jax.Array], grid: Mapping[Cell, Batch], *, chunk: int,
             axes: Sequence[str], train_ranges: Sequence[Sequence[int]], step: int, row_multiple: int = 1,
             bucket: int | None = BUCKET) -> GridResult:
  """Decodes every cell of `grid` greedily and scores it; see `GridResult`.

  Cells are decoded in width groups (`bucket_cells`; bucket=None: all in one group, padded to
  the widest cell). decode: NumPy eval batch of at most `chunk` rows (a multiple of
  `row_multiple`) -> generated tokens int32 [rows, A] (see `decode_rows`).
  """
  cells = [tuple(int(n) for n in c) for c in grid]
  exact_C, digit_C, target_C = np.zeros(len(cells)), np.zeros(len(cells)), np.zeros(len(cells))
  count_C = np.zeros(len(cells), np.int64)
  batches = list(grid.values())
  for widths, members in bucket_cells(grid, bucket).items():
    batch, index_N = stack_cells({cells[i]: batches[i] for i in members}, widths)
    generated_NxA = decode_rows(decode, batch, chunk, row_multiple)
    exact_C[members], digit_C[members], count_C[members], target_C[members] = score(
        generated_NxA, batch, index_N, len(members))
  return GridResult(axes=list(axes), cells=cells, exact_C=exact_C, digit_C=digit_C, count_C=count_C,
                    in_box_C=np.array([in_box(c, train_ranges) for c in cells]),
                    train_ranges=[tuple(int(n) for n in r) for r in train_ranges], step=int(step),
                    exact_target_C=target_C)


def as_table(result: GridResult, values_C: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
  """A [rows, cols] table of per-cell values for 1- or 2-axis grids (NaN for missing cells),
  and the lengths along each axis. A 1-axis grid is one row."""
  cells = np.array(result.cells)
  if cells.shape[1] > 2:
    raise ValueError(f"a grid with {cells.shape[1]} length axes has no 2-D table; use the .json per-cell scores")
  if cells.shape[1] == 1:
    cells = np.concatenate([np.ones_like(cells), cells], axis=1)
  ticks = [sorted(set(cells[:, k].tolist())) for k in range(2)]
  table = np.full((len(ticks[0]), len(ticks[1])), np.nan)
  for (a, b), v in zip(cells, values_C):
    table[ticks[0].index(a), ticks[1].index(b)] = v
  return table, ticks


def format_grid(result: GridResult) -> str:
  """The exact-match grid as text: rows = first length axis, columns = second; training cells
  in brackets, then the in/out-of-distribution means."""
  table, (rows, cols) = as_table(result, result.exact_C)
  boxed = {c for c, inside in zip(result.cells, result.in_box_C) if inside}
  two_axes = len(result.cells[0]) == 2
  layout = f"rows: {result.axes[0]}, columns: {result.axes[1]}" if two_axes else f"columns: {result.axes[0]}"
  lines = [f"exact match (%) at step {result.step}; {layout}; [..] = training lengths",
           "      " + "".join(f"{c:>7}" for c in cols)]
  for i, r in enumerate(rows):
    cells_text = []
    for j, c in enumerate(cols):
      cell = (r, c) if two_axes else (c,)
      text = "" if np.isnan(table[i, j]) else f"{100 * table[i, j]:.1f}"
      cells_text.append(f"[{text}]" if cell in boxed else f" {text} ")
    lines.append(f"{r:>6}" + "".join(f"{t:>7}" for t in cells_text))
  lines.append(region_means(result))
  return "\n".join(lines)


def region_means(result: GridResult) -> str:
  """'exact match: ID 99.5% [98.9, 99.8], OOD 12.0% [10.1, 14.2]' with 95% Wilson intervals
  (a region without cells is left out)."""
  summary = result.summary()
  parts = [f"{name} {format_interval(summary[f'eval/exact_{region}'], result.problems(region))}"
           for name, region in (("ID", "id"), ("OOD", "ood")) if f"eval/exact_{region}" in summary]
  return "exact match: " + ", ".join(parts)


def plot_heatmap(result: GridResult, path: str, title: str = "") -> None:
  """Writes the exact-match grid as a heatmap PNG, values annotated, the training region boxed."""
  table, (rows, cols) = as_table(result, result.exact_C)
  two_axes = len(result.cells[0]) == 2
  fig = Figure(figsize=(2.0 + 0.6 * len(cols), 1.5 + 0.6 * len(rows)), dpi=120)
  ax = fig.subplots()
  image = ax.imshow(100 * table, vmin=0, vmax=100, cmap="viridis", origin="lower")
  for i in range(len(rows)):
    for j in range(len(cols)):
      if not np.isnan(table[i, j]):
        ax.text(j, i, f"{100 * table[i, j]:.0f}", ha="center", va="center", fontsize=7,
                color="black" if table[i, j] > 0.5 else "white")
  ranges = result.train_ranges if two_axes else [(1, 1)] + result.train_ranges
  (r_lo, r_hi), (c_lo, c_hi) = ranges
  inside_rows = [i for i, r in enumerate(rows) if r_lo <= r <= r_hi]
  inside_cols = [j for j, c in enumerate(cols) if c_lo <= c <= c_hi]
  if inside_rows and inside_cols:
    ax.add_patch(Rectangle(
        (inside_cols[0] - 0.5, inside_rows[0] - 0.5), len(inside_cols), len(inside_rows),
        fill=False, edgecolor="red", linewidth=2, label="training lengths"))
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), fontsize=7, frameon=False)
  ax.set_xticks(range(len(cols)), [str(c) for c in cols])
  ax.set_yticks(range(len(rows)), [str(r) for r in rows])
  ax.set_xlabel(result.axes[-1])
  ax.set_ylabel(result.axes[0] if two_axes else "")
  ax.set_title(f"{title} step {result.step}\n{region_means(result)}".strip(), fontsize=8)
  fig.colorbar(image, ax=ax, label="exact match (%)")
  fig.tight_layout()
  fig.savefig(path)


def grid_prefix(eval_dir: str, step: int) -> str:
  """eval_dir/grid_<step, 7 digits>: the path of `save`'s files without the suffix."""
  return os.path.join(eval_dir, f"grid_{step:07d}")


def save(result: GridResult, eval_dir: str, title: str = "", record: Mapping[str, Any] | None = None) -> str:
  """Writes grid_<step>.npz, .json and .png under eval_dir; returns the path prefix.
  record: extra top-level fields of the .json (e.g. the evaluation-time rope_scaling)."""
  os.makedirs(eval_dir, exist_ok=True)
  prefix = grid_prefix(eval_dir, result.step)
  target_C = result.exact_C if result.exact_target_C is None else result.exact_target_C
  np.savez(prefix + ".npz", axes=np.array(result.axes), cells=np.array(result.cells), exact=result.exact_C,
           exact_target=target_C, digit=result.digit_C, count=result.count_C, in_box=result.in_box_C,
           train_ranges=np.array(result.train_ranges), step=result.step)
  with open(prefix + ".json", "w") as f:
    json.dump({"step": result.step, "axes": result.axes, "train_ranges": result.train_ranges, **(record or {}),
               **result.summary(),
               "cells": [{"lengths": list(c), "exact": float(e), "exact_target": float(t), "digit": float(d),
                          "count": int(n), "in_distribution": bool(i)}
                         for c, e, t, d, n, i in zip(result.cells, result.exact_C, target_C, result.digit_C,
                                                     result.count_C, result.in_box_C)]}, f, indent=1)
  plot_heatmap(result, prefix + ".png", title)
  return prefix
