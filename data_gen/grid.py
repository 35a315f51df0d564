"""Exact-length evaluation cells, kept disjoint from training data.

Two mechanisms keep evaluation problems out of training:

1. Seed domains: training and evaluation random streams come from different
   `SeedSequence` spawn keys (`TRAIN_DOMAIN`, `EVAL_DOMAIN`), so they never share draws.
2. A hash split of the problem space: `problem_hash` mixes every operand digit and length
   into 64 bits (splitmix64 finalizer, vectorized over the batch). A problem is *held out*
   when its hash falls in the lowest `holdout` fraction of [0, 2**64). Training rejects
   held-out problems (and redraws them with the same lengths); an evaluation cell inside the
   training length box accepts only held-out problems. A cell outside the box needs no
   filter: its operand lengths differ from every training problem's, and lengths are exact.
   Small cells (e.g. 1-digit + 1-digit: 100 problems) then hold few distinct held-out
   problems, and their N samples repeat them; a cell with none raises a ValueError.
   `holdout = 0` switches the split off (for tasks whose problem is fixed by its lengths,
   such as `a a a -> 1 2 3` counting, where disjointness comes from the lengths alone).
"""

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np

from data_gen.text import Number, Problem

TRAIN_DOMAIN = 0
EVAL_DOMAIN = 1
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


def _number_hash(number: Number, salt: int, used_B: np.ndarray) -> np.ndarray:
  """uint64 [B]: a hash of each number's digits and length (0 where not used_B)."""
  w = number.digits_BxW.shape[1]
  weights_W = _mix64(np.arange(w, dtype=np.uint64) + np.uint64(salt << 32))
  valid_BxW = (np.arange(w)[None, :] < number.length_B[:, None]) & used_B[:, None]
  values_BxW = np.where(valid_BxW, number.digits_BxW.astype(np.uint64) + np.uint64(1), np.uint64(0))
  return ((values_BxW * weights_W).sum(axis=1, dtype=np.uint64)
          + np.where(used_B, number.length_B, 0).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def problem_hash(problem: Problem) -> np.ndarray:
  """64-bit hash of each problem's inputs: the operands a format writes (digits and lengths)
  and the query of hint tasks. Returns uint64 [B]."""
  batch = problem.batch
  count_B = (np.full(batch, len(problem.operands)) if problem.operand_count_B is None
             else problem.operand_count_B)
  h_B = np.zeros(batch, np.uint64)
  for k, number in enumerate(problem.operands):
    h_B = _mix64(h_B + _number_hash(number, k + 1, k < count_B))
  if problem.query is not None:
    h_B = _mix64(h_B + _number_hash(problem.query, 0, np.ones(batch, bool)))
  return h_B


def held_out(problem: Problem, holdout: float) -> np.ndarray:
  """bool [B]: True where the problem belongs to the evaluation part of the hash split."""
  return (problem_hash(problem) >> np.uint64(11)) < np.uint64(int(holdout * 2.0**53))


def _concat(a: Problem, b: Problem) -> Problem:
  """The rows of `a` then those of `b` (same task; lists padded to the longer operand tuple)."""
  def numbers(x: Sequence[Number], y: Sequence[Number]) -> tuple[Number, ...]:
    k = max(len(x), len(y))
    if len(x) != len(y) and a.operand_count_B is None:
      raise ValueError("problems with different operand counts and no operand_count_B")
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
      a, operands=numbers(a.operands, b.operands), answers=numbers(a.answers, b.answers),
      query=None if a.query is None else number(a.query, b.query),
      operand_count_B=counts(a.operand_count_B, b.operand_count_B),
      answer_count_B=counts(a.answer_count_B, b.answer_count_B))


def sample_split(task, rng: np.random.Generator, lengths_BxK: np.ndarray, *, holdout: float,
                 want_held_out: bool) -> Problem:
  """Samples `task` at the given lengths, keeping only one side of the hash split.

  Rows that land on the wrong side are redrawn with their own lengths (several candidates
  per row per round, vectorized), so the result is a deterministic function of `rng`.

  Args:
    task: a task with `sample(rng, lengths_BxK) -> Problem`.
    lengths_BxK: int, one length per length axis for each row.
    holdout: the held-out fraction in (0, 1).
    want_held_out: True for evaluation rows, False for training rows.
  Returns:
    A Problem of batch B.
  Raises:
    ValueError: some lengths have (almost) no problem on the wanted side.
  """
  accept = holdout if want_held_out else 1.0 - holdout
  tries = math.ceil(3.0 / accept)
  problem = task.sample(rng, lengths_BxK)
  ok_B = held_out(problem, holdout) == want_held_out
  for _ in range(MAX_ROUNDS):
    redo_R = np.flatnonzero(~ok_B)
    if redo_R.size == 0:
      return problem
    candidates = task.sample(rng, np.repeat(lengths_BxK[redo_R], tries, axis=0))
    good_RxN = (held_out(candidates, holdout) == want_held_out).reshape(redo_R.size, tries)
    found_R = good_RxN.any(axis=1)
    source_B = np.arange(problem.batch)
    source_B[redo_R[found_R]] = problem.batch + (np.arange(redo_R.size) * tries
                                                 + good_RxN.argmax(axis=1))[found_R]
    problem = _concat(problem, candidates).take(source_B)
    ok_B[redo_R[found_R]] = True
  side = "held-out (evaluation)" if want_held_out else "training"
  raise ValueError(
      f"no {side} problem found for lengths {lengths_BxK[~ok_B][0].tolist()} of task {problem.op!r} "
      f"with holdout={holdout}: the task has too few distinct problems at these lengths; "
      "set holdout=0 (disjointness then comes from lengths only) or change the lengths")


def in_box(cell: Sequence[int], ranges: Sequence[Sequence[int]]) -> bool:
  """Whether every length of `cell` lies within its axis's (min, max) training range."""
  return all(lo <= n <= hi for n, (lo, hi) in zip(cell, ranges))


def cells(ranges: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
  """All cells of a grid: the product of inclusive per-axis (min, max) ranges."""
  return list(itertools.product(*(range(lo, hi + 1) for lo, hi in ranges)))


def sample_cell(task, cell: Sequence[int], n: int, *, rng: np.random.Generator, holdout: float,
                train_ranges: Sequence[Sequence[int]]) -> Problem:
  """N problems with exactly the lengths of `cell`, disjoint from training data.

  Args:
    task: a task with `sample(rng, lengths_BxK)` and `length_axes`.
    cell: one length per length axis.
    n: the number of problems.
    rng: the cell's stream, `derive_rng(seed, EVAL_DOMAIN, *cell)`.
    holdout: the hash-split fraction (0 = no split).
    train_ranges: the training (min, max) per length axis.
  Returns:
    A Problem of batch n.
  """
  if len(cell) != len(task.length_axes):
    raise ValueError(f"cell {tuple(cell)} needs one length per axis {tuple(task.length_axes)}")
  lengths_NxK = np.tile(np.asarray(cell, np.int64), (n, 1))
  if holdout > 0 and in_box(cell, train_ranges):
    return sample_split(task, rng, lengths_NxK, holdout=holdout, want_held_out=True)
  return task.sample(rng, lengths_NxK)
