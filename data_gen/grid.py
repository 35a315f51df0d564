"""Exact-length evaluation cells, kept disjoint from training data.

Two mechanisms keep evaluation problems out of training:

1. Seed domains: training and evaluation random streams come from different
   `SeedSequence` spawn keys (`TRAIN_DOMAIN`, `EVAL_DOMAIN`), so they never share draws.
2. A hash split of the problem space. `problem_hash` maps a problem's inputs (the operands
   a format writes, digits and lengths, and a hint's query) to 64 bits: an exact integer
   weighted sum of the digits (float64 arithmetic on integers below 2**53, so the same on
   every machine) mixed by the splitmix64 finalizer. A problem is *held out* when its hash
   falls in the lowest `holdout` fraction of [0, 2**64). Equal problems hash equally, so:
   - training (`sample_training`) keeps only problems that are not held out: it draws a
     few more rows than needed at uniform lengths and keeps the first ones outside the
     held-out part (cheap: one task call; lengths stay uniform in the box up to each
     cell's own held-out share, and a length whose every problem is held out is never
     trained on);
   - an evaluation cell inside the training length box (`sample_cell`) accepts only held-out
     problems, redrawing the others with the cell's exact lengths. A cell outside the box
     needs no filter: its operand lengths differ from every training problem's.
   Small cells (1-digit + 1-digit: 100 problems) hold few distinct held-out problems, so
   their N samples repeat them; a cell with none raises a ValueError.
3. Validation cells (for choosing the best checkpoint) come from the same held-out part
   through their own stream (`VAL_DOMAIN`), and `sample_cell(..., exclude_E=)` rejects every
   problem of the test cell (compared by hash), so no validation problem is a test problem. `holdout = 0` switches
   the split off (for tasks whose problem is fixed by its lengths, such as `a a a -> 1 2 3`
   counting, disjointness then comes from the lengths alone).
"""

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np

from data_gen.text import Number, Problem

TRAIN_DOMAIN = 0
EVAL_DOMAIN = 1
SET_DOMAIN = 2  # fixed training sets and their epoch shuffles (data_gen.train_set)
VAL_DOMAIN = 3  # validation problems (data_gen.pipeline.validation_grid)
MAX_ROUNDS = 32  # redraw rounds before a cell is declared (almost) empty


def derive_rng(seed: int, domain: int, *key: int) -> np.random.Generator:
  """A Philox generator determined by (seed, domain, *key) alone: stateless sampling."""
  sequence = np.random.SeedSequence(int(seed), spawn_key=(int(domain),) + tuple(int(k) for k in key))
  return np.random.Generator(np.random.Philox(sequence))


def _mix64(x_B: np.ndarray) -> np.ndarray:
  """splitmix64 finalizer on uint64 (wrapping arithmetic)."""
  x_B = (x_B ^ (x_B >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x_B = (x_B ^ (x_B >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x_B ^ (x_B >> np.uint64(31))


def _weight_table(k: int, w: int) -> np.ndarray:
  """float64 [k, w]: fixed pseudo-random integer weights below 2**32, one per (number, digit
  position), independent of array widths (exact float64 sums up to 2**53)."""
  index = (np.arange(k, dtype=np.uint64)[:, None] << np.uint64(24)) + np.arange(1, w + 1, dtype=np.uint64)
  return (_mix64(index) >> np.uint64(32)).astype(np.float64)


_WEIGHTS = _weight_table(64, 256)  # a constant: the weights of the commonest sizes, computed once
_WEIGHTS.flags.writeable = False


def _weights(k: int, w: int) -> np.ndarray:
  """`_weight_table(k, w)`, sliced from the constant table when it is large enough."""
  return _WEIGHTS[:k, :w] if k <= _WEIGHTS.shape[0] and w <= _WEIGHTS.shape[1] else _weight_table(k, w)


def problem_hash(problem: Problem) -> np.ndarray:
  """uint64 [B]: a hash of each problem's inputs (written operands' digits and lengths, query).

  Number k contributes length * weight[k, 0] + sum_i digit_i * weight[k, 1 + i]; operands
  beyond a row's operand_count_B are not written and contribute nothing.
  """
  numbers = problem.operands + ((problem.query,) if problem.query is not None else ())
  k = len(numbers)
  w = max(n.digits_BxW.shape[1] for n in numbers) + 1  # slot 0 holds the length
  if 9 * k * w >= 2**21:
    raise ValueError(f"problem_hash: {k} numbers of {w - 1} digits exceed its exact range (k * w < 2**21 / 9)")
  values_BxKxW = np.zeros((problem.batch, k, w), np.float64)
  for i, number in enumerate(numbers):
    values_BxKxW[:, i, 0] = number.length_B
    values_BxKxW[:, i, 1:1 + number.digits_BxW.shape[1]] = number.digits_BxW
  if problem.operand_count_B is not None:
    used_BxK = np.arange(k)[None, :] < problem.operand_count_B[:, None]
    used_BxK[:, len(problem.operands):] = True  # the query
    values_BxKxW *= used_BxK[:, :, None]
  sum_B = values_BxKxW.reshape(problem.batch, k * w) @ _weights(k, w).reshape(k * w)
  return _mix64(sum_B.astype(np.uint64))


def held_out(problem: Problem, holdout: float) -> np.ndarray:
  """bool [B]: True where the problem belongs to the evaluation part of the hash split."""
  return (problem_hash(problem) >> np.uint64(11)) < np.uint64(int(holdout * 2.0**53))


def concat(a: Problem, b: Problem) -> Problem:
  """The rows of `a` then those of `b` (same task; lists padded to the longer operand tuple)."""
  def numbers(x: Sequence[Number], y: Sequence[Number], count_B: np.ndarray | None) -> tuple[Number, ...]:
    k = max(len(x), len(y))
    if len(x) != len(y) and count_B is None:
      raise ValueError(f"cannot join problems of {len(x)} and {len(y)} numbers without a count per row")
    filler = lambda n: Number(np.zeros((n.batch, 1), np.int8), np.ones(n.batch, np.int32))
    x = tuple(x) + (filler(x[0]),) * (k - len(x))
    y = tuple(y) + (filler(y[0]),) * (k - len(y))
    return tuple(map(number, x, y))

  def number(x: Number, y: Number) -> Number:
    w = max(x.digits_BxW.shape[1], y.digits_BxW.shape[1])
    pad = lambda d: np.pad(d, ((0, 0), (0, w - d.shape[1])))
    return Number(np.concatenate([pad(x.digits_BxW), pad(y.digits_BxW)]),
                  np.concatenate([x.length_B, y.length_B]))

  counts = lambda x, y: None if x is None else np.concatenate([x, y])
  return dataclasses.replace(
      a, operands=numbers(a.operands, b.operands, a.operand_count_B),
      answers=numbers(a.answers, b.answers, a.answer_count_B),
      query=None if a.query is None else number(a.query, b.query),
      operand_count_B=counts(a.operand_count_B, b.operand_count_B),
      answer_count_B=counts(a.answer_count_B, b.answer_count_B))


def sample_lengths(rng: np.random.Generator, ranges: Sequence[tuple[int, int]], n: int) -> np.ndarray:
  """int64 [n, K]: per-example lengths, uniform within each axis's inclusive (min, max) (an
  axis with min = max draws nothing)."""
  return np.stack([np.full(n, lo) if lo == hi else rng.integers(lo, hi + 1, n) for lo, hi in ranges], axis=1)


def sample_training(task, rng: np.random.Generator, ranges: Sequence[tuple[int, int]], n: int, *,
                    holdout: float) -> Problem:
  """n training problems at uniform lengths, none of them held out (module docstring).

  Args:
    task: a task with `sample(rng, lengths_BxK) -> Problem`.
    ranges: inclusive (min, max) per length axis.
    holdout: the held-out fraction in [0, 1); 0 draws exactly n rows with no filter.
  Returns:
    A Problem of batch n.
  Raises:
    ValueError: (almost) every problem in the ranges is held out.
  """
  if holdout == 0:
    return task.sample(rng, sample_lengths(rng, ranges, n))
  problem = None
  for _ in range(MAX_ROUNDS):
    need = n - (0 if problem is None else problem.batch)
    draw = need + math.ceil(need * holdout / (1 - holdout) + 4 * math.sqrt(need * holdout) + 2)
    candidates = task.sample(rng, sample_lengths(rng, ranges, draw))
    keep_N = np.flatnonzero(~held_out(candidates, holdout))[:need]
    kept = candidates.take(keep_N)
    problem = kept if problem is None else concat(problem, kept)
    if problem.batch == n:
      return problem
  raise ValueError(f"lengths {list(ranges)} of task {problem.op!r}: almost every problem is held out "
                   f"with holdout={holdout}; set holdout=0 or widen the lengths")


def sample_held_out(task, rng: np.random.Generator, lengths_BxK: np.ndarray, *,
                    holdout: float, exclude_E: np.ndarray | None = None) -> Problem:
  """Problems at exactly the given lengths, every one of them held out (for evaluation).

  Rows outside the held-out part (or excluded) are redrawn with their own lengths, several
  candidates per row per round, vectorized; the result is a deterministic function of `rng`.

  Args:
    task: a task with `sample(rng, lengths_BxK) -> Problem`.
    lengths_BxK: int, one length per length axis for each row.
    holdout: the held-out fraction in (0, 1), or 0: no hash filter (with exclude_E).
    exclude_E: uint64 `problem_hash`es of problems never to return, or None.
  Returns:
    A Problem of batch B.
  Raises:
    ValueError: some lengths have (almost) no held-out problem that is not excluded.
  """
  def good(candidates: Problem) -> np.ndarray:
    ok = held_out(candidates, holdout) if holdout > 0 else np.ones(candidates.batch, bool)
    return ok if exclude_E is None else ok & ~np.isin(problem_hash(candidates), exclude_E)

  tries = math.ceil(3.0 / holdout) if holdout > 0 else 8
  problem = task.sample(rng, lengths_BxK)
  ok_B = good(problem)
  for _ in range(MAX_ROUNDS):
    redo_R = np.flatnonzero(~ok_B)
    if redo_R.size == 0:
      return problem
    candidates = task.sample(rng, np.repeat(lengths_BxK[redo_R], tries, axis=0))
    good_RxN = good(candidates).reshape(redo_R.size, tries)
    found_R = good_RxN.any(axis=1)
    source_B = np.arange(problem.batch)
    source_B[redo_R[found_R]] = problem.batch + (np.arange(redo_R.size) * tries
                                                 + good_RxN.argmax(axis=1))[found_R]
    problem = concat(problem, candidates).take(source_B)
    ok_B[redo_R[found_R]] = True
  raise ValueError(
      f"no held-out problem {'outside the test cell ' if exclude_E is not None else ''}found for lengths "
      f"{lengths_BxK[~ok_B][0].tolist()} of task {problem.op!r} with holdout={holdout}: the task has too few "
      "distinct problems at these lengths; set holdout=0 (disjointness then comes from lengths only) or change "
      "the lengths")


def in_box(cell: Sequence[int], ranges: Sequence[Sequence[int]]) -> bool:
  """Whether every length of `cell` lies within its axis's (min, max) training range."""
  return all(lo <= n <= hi for n, (lo, hi) in zip(cell, ranges))


def cells(ranges: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
  """All cells of a grid: the product of inclusive per-axis (min, max) ranges."""
  return list(itertools.product(*(range(lo, hi + 1) for lo, hi in ranges)))


def sample_cell(task, cell: Sequence[int], n: int, *, rng: np.random.Generator, holdout: float,
                train_ranges: Sequence[Sequence[int]], exclude_E: np.ndarray | None = None) -> Problem:
  """N problems with exactly the lengths of `cell`, disjoint from training data.

  Args:
    task: a task with `sample(rng, lengths_BxK)` and `length_axes`.
    cell: one length per length axis.
    n: the number of problems.
    rng: the cell's stream, `derive_rng(seed, EVAL_DOMAIN or VAL_DOMAIN, *cell)`.
    holdout: the hash-split fraction (0 = no split).
    train_ranges: the training (min, max) per length axis.
    exclude_E: uint64 `problem_hash`es never to return (a validation cell: its test cell's), or None.
  Returns:
    A Problem of batch n.
  """
  if len(cell) != len(task.length_axes):
    raise ValueError(f"cell {tuple(cell)} needs one length per axis {tuple(task.length_axes)}")
  lengths_NxK = np.tile(np.asarray(cell, np.int64), (n, 1))
  split = holdout if in_box(cell, train_ranges) else 0.0
  if split > 0 or exclude_E is not None:
    return sample_held_out(task, rng, lengths_NxK, holdout=split, exclude_E=exclude_E)
  return task.sample(rng, lengths_NxK)
