"""A fixed training set: N distinct problems drawn once, then epochs of shuffled passes over it.

By default every training row is a fresh problem (`grid.sample_training`). With
`data.train_set.size = N > 0` the main task instead trains on one set of exactly N distinct
problems (distinct by `grid.problem_hash`), a deterministic function of the data config and
`data.train_set.seed` alone (so runs of different seeds may share one set), drawn only from the
training part of the hash split: no problem of the set is ever in an evaluation cell.

Composition (`data.train_set.parts`, e.g. "100@1:1;90@1:2"): parts are filled in order, each
with up to `count` new problems whose lengths lie in its box ("lo:hi" on every length axis, or
"axis=lo:hi,axis=lo:hi" with the other axes at their training range); the rest of the N come
from the whole training box. A part whose box holds fewer new training problems than its
count gives all it has (e.g. "100@1:1" takes every one-digit pair outside the held-out part)
and the rest of the set makes up the shortfall. Within a part lengths are drawn uniformly per
axis, as in the fresh stream, so a cell with few problems left fills up and the others take
its share.

Balance (`data.train_set.balanced`): the task's strata (addition: the number of carries,
0..longest operand) are balanced by rejection: a candidate is dropped when its stratum
already holds ceil(N / strata) problems of the set.

The stream: main-task row r of the run (rows counted step by step, shard by shard; with hints
the main task's rows only) is problem perm_e[r mod N] of epoch e = r // N, where perm_e is a
permutation drawn from (run seed, SET_DOMAIN, e). Every problem occurs exactly once per
epoch, and the batch of a step still depends only on (seed, step, shard), so resume and
multi-process sharding stay exact (see `data_gen.pipeline`).
"""

import math
from typing import Sequence

import ml_collections
import numpy as np

from data_gen import grid
from data_gen.text import Problem

DRAW_MIN, DRAW_MAX = 256, 2**20  # candidates drawn per round: twice the expected need, within these
DRAW_BUDGET = 64  # a part draws at most DRAW_BUDGET * count + DRAW_MIN candidates (4 DRAW_MAX) in all


def default_config() -> ml_collections.ConfigDict:
  """data.train_set: off (size 0) keeps today's stream of fresh problems."""
  cfg = ml_collections.ConfigDict()
  cfg.size = 0  # N distinct problems; 0: a fresh problem for every row
  cfg.seed = 0  # the seed the set is drawn from (the epoch shuffles use the run seed)
  cfg.parts = ""  # "count@box;count@box", filled in order; the rest from the training box
  cfg.balanced = False  # balance the task's strata (addition: carries) by rejection
  return cfg


def _box(spec: str, axes: Sequence[str], ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
  def span(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    return int(lo), int(hi if sep else lo)

  if "=" not in spec:
    return (span(spec),) * len(axes)
  box = dict(zip(axes, ranges))
  for entry in spec.split(","):
    axis, _, value = entry.partition("=")
    if axis.strip() not in box:
      raise ValueError(f"data.train_set.parts: axis {axis.strip()!r} unknown; the task's axes are {list(axes)}")
    box[axis.strip()] = span(value)
  return tuple(box[axis] for axis in axes)


def parse_parts(spec: str, axes: Sequence[str], ranges: Sequence[tuple[int, int]],
                size: int) -> tuple[tuple[tuple[tuple[int, int], ...], int], ...]:
  """"100@1:1;90@1:2" -> (((1, 1), (1, 1)), 100), (((1, 2), (1, 2)), 90)) for two axes.

  Raises ValueError on a malformed entry, a box outside the training ranges `ranges`, or
  counts summing above `size`.
  """
  parts = []
  for entry in filter(None, (e.strip() for e in spec.split(";"))):
    count, sep, box_spec = entry.partition("@")
    try:
      part = (_box(box_spec, axes, ranges), int(count))
    except ValueError as e:
      raise ValueError(f"data.train_set.parts entry {entry!r} must be 'count@lo:hi' or "
                       f"'count@axis=lo:hi,axis=lo:hi' ({e})") from e
    box, n = part
    if not sep or n < 0 or any(not (r_lo <= lo <= hi <= r_hi) for (lo, hi), (r_lo, r_hi) in zip(box, ranges)):
      raise ValueError(f"data.train_set.parts entry {entry!r} needs a count >= 0 and a box inside "
                       f"data.train_lengths {dict(zip(axes, ranges))}")
    parts.append(part)
  if sum(n for _, n in parts) > size:
    raise ValueError(f"data.train_set.parts {spec!r} asks for {sum(n for _, n in parts)} problems, "
                     f"above data.train_set.size = {size}")
  return tuple(parts)


def _fresh(hash_C: np.ndarray, taken: np.ndarray) -> np.ndarray:
  """int [F]: candidates (in draw order) whose hash is new: neither taken nor drawn before."""
  _, first = np.unique(hash_C, return_index=True)
  first = np.sort(first)
  return first[~np.isin(hash_C[first], taken)]


def _within_quota(stratum_F: np.ndarray, left_S: np.ndarray) -> np.ndarray:
  """bool [F]: whether each candidate, in order, still fits its stratum's remaining quota."""
  order = np.argsort(stratum_F, kind="stable")
  sorted_s = stratum_F[order]
  starts = np.searchsorted(sorted_s, sorted_s, side="left")
  rank = np.empty_like(order)
  rank[order] = np.arange(order.size) - starts
  return rank < left_S[stratum_F]


def _in_box(lengths_CxK: np.ndarray, box: Sequence[tuple[int, int]]) -> np.ndarray:
  """bool [C]: rows whose every length lies in the box."""
  lo_K, hi_K = np.array(box).T
  return ((lengths_CxK >= lo_K) & (lengths_CxK <= hi_K)).all(axis=1)


def _candidates(task, rng: np.random.Generator, box, earlier, n: int, holdout: float) -> Problem | None:
  """Up to n problems with lengths uniform over the cells of `box` outside every `earlier`
  box, the held-out ones dropped (None: no draw landed in such a cell)."""
  lengths_CxK = grid.sample_lengths(rng, box, n)
  for other in earlier:
    lengths_CxK = lengths_CxK[~_in_box(lengths_CxK, other)]
  if not lengths_CxK.shape[0]:
    return None
  problem = task.sample(rng, lengths_CxK)
  return problem.take(np.flatnonzero(~grid.held_out(problem, holdout))) if holdout else problem


def materialize(task, ranges: Sequence[tuple[int, int]], *, size: int, seed: int, holdout: float,
                parts: Sequence[tuple[tuple[tuple[int, int], ...], int]] = (),
                balanced: bool = False) -> Problem:
  """The fixed training set: a Problem of batch `size`, distinct problems, none held out.

  Args:
    task: a task (`sample`, `length_axes`; with balanced also `n_strata` and `stratum`).
    ranges: the training (min, max) per length axis.
    size: N >= 1; seed: the set's seed; holdout: the hash split's held-out fraction.
    parts: ((box, count), ...) from `parse_parts`; part i draws from the cells of its box that
      no earlier part's box holds, the rest of the N from the training box's remaining cells.
    balanced: balance the task's strata by rejection (module docstring).
  Returns:
    The N problems, part by part in draw order (the stream shuffles them per epoch).
  Raises:
    ValueError: the remaining cells hold fewer distinct training problems (within the strata
      quotas) than the set still needs.
  """
  rng = grid.derive_rng(seed, grid.SET_DOMAIN)
  strata = task.n_strata(ranges) if balanced else 1
  left_S = np.full(strata, math.ceil(size / strata) if balanced else size)
  taken = np.zeros(0, np.uint64)
  pieces: list[Problem] = []
  boxes = [box for box, _ in parts] + [tuple(ranges)]
  for index, want in enumerate([n for _, n in parts] + [size]):
    want, rate = min(want, size - taken.size), 1.0
    budget = min(DRAW_BUDGET * want + DRAW_MIN, 4 * DRAW_MAX)
    for _ in range(grid.MAX_ROUNDS):
      draw = min(DRAW_MAX, budget, max(DRAW_MIN, math.ceil(2 * want / rate)))
      if want == 0 or draw == 0:
        break
      budget -= draw
      candidates = _candidates(task, rng, boxes[index], boxes[:index], draw, holdout)
      if candidates is None:
        continue
      hash_C = grid.problem_hash(candidates)
      keep = _fresh(hash_C, taken)
      stratum_F = task.stratum(candidates.take(keep)) if balanced and keep.size else np.zeros(keep.size, np.int64)
      fits_F = _within_quota(stratum_F, left_S)
      keep, stratum_F = keep[fits_F][:want], stratum_F[fits_F][:want]
      left_S -= np.bincount(stratum_F, minlength=strata)
      pieces.append(candidates.take(keep))
      taken = np.concatenate([taken, hash_C[keep]])
      want -= keep.size
      rate = max(keep.size / draw, 1 / DRAW_MAX)
    if index == len(parts) and want:
      raise ValueError(f"data.train_set.size = {size}: drawing from the training lengths {list(ranges)} found "
                       f"only {taken.size} distinct training problems{' within the strata quotas' if balanced else ''} "
                       f"(holdout {holdout}; the last part from the cells the others leave, at most "
                       f"{DRAW_BUDGET} candidates a problem); lower the size or widen data.train_lengths")
  return _join(pieces)


def _join(pieces: Sequence[Problem]) -> Problem:
  out = pieces[0]
  for piece in pieces[1:]:
    out = grid.concat(out, piece)
  return out


def epoch_rows(size: int, seed: int, start: int, count: int) -> np.ndarray:
  """int64 [count]: the set indices of main-task rows start .. start + count - 1 of the stream
  (epoch e = row // size visits the set in the order of its own permutation)."""
  row = np.arange(start, start + count, dtype=np.int64)
  epoch = row // size
  out = np.empty(count, np.int64)
  for e in np.unique(epoch):
    at = epoch == e
    out[at] = grid.derive_rng(seed, grid.SET_DOMAIN, int(e)).permutation(size)[row[at] % size]
  return out
