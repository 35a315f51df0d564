"""Awasthi & Gupta 2023's auxiliary ("hint") tasks for sorting: a list and one element of it.

`H 5 3 9 1 ? 3 > 5 E`: the query (after `?`) is an element of the list. The paper's
auxiliary tasks include successor (best), predecessor and count; we define, for the query
x (ties between equal values resolved by value, so answers are unambiguous):
  successor_hint    the smallest element strictly larger than x (x is never the maximum);
  predecessor_hint  the largest element strictly smaller than x (x is never the minimum);
  count_hint        how many times x occurs in the list.
Successor and predecessor need two distinct values, so their lists have count >= 2 and a
list whose elements are all equal is redrawn (vectorized over the rows concerned).
"""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.tasks.sorting import sample_list, sorted_list
from data_gen.text import Number, Problem


def value_ranks(items_BxKxW: np.ndarray, length_BxK: np.ndarray, count_B: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
  """Dense value ranks (0 = smallest; equal values share a rank) of the listed numbers.

  Returns:
    rank_BxK (int, in list order) and sorted_rank_BxK (int, in ascending order); entries
    at k >= count_B[b] hold ranks above every listed one.
  """
  order_BxK = dg.sort_order(items_BxKxW, length_BxK, count_B)
  digits, lengths = dg.gather_items(items_BxKxW, order_BxK), dg.gather_items(length_BxK, order_BxK)
  differs = (lengths[:, 1:] != lengths[:, :-1]) | (digits[:, 1:] != digits[:, :-1]).any(axis=2)
  differs |= np.arange(1, differs.shape[1] + 1) >= count_B[:, None]
  sorted_rank = np.concatenate([np.zeros_like(count_B)[:, None], np.cumsum(differs, axis=1)], axis=1)
  rank = np.empty_like(sorted_rank)
  np.put_along_axis(rank, order_BxK, sorted_rank, axis=1)
  return rank, sorted_rank


class _HintTask:
  """Shared sampling; subclasses define the candidates for x and the answer."""

  length_axes = ("count", "digits")
  min_count = 1
  prefix = ""

  def __init__(self, equal_lengths: bool = True):
    self.equal_lengths = equal_lengths

  def candidates(self, rank_BxK: np.ndarray, top_B: np.ndarray) -> np.ndarray:
    """bool [B, K]: which listed elements may be the query (top_B = the largest rank)."""
    raise NotImplementedError

  def answer(self, items_BxKxW, length_BxK, rank_BxK, sorted_rank_BxK, query_rank_B, count_B) -> Number:
    raise NotImplementedError

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Row b: a list of lengths_BxK[b, 0] numbers of lengths_BxK[b, 1] digits, a query, the answer."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes, {"count": self.min_count})
    count_B, digits_B = lengths_BxK[:, 0].astype(np.int32), lengths_BxK[:, 1]
    items, lengths = sample_list(rng, count_B, digits_B, self.equal_lengths)
    listed = np.arange(items.shape[1]) < count_B[:, None]
    while True:
      rank, sorted_rank = value_ranks(items, lengths, count_B)
      top_B = np.take_along_axis(sorted_rank, count_B[:, None] - 1, axis=1)[:, 0]
      allowed = self.candidates(rank, top_B) & listed
      redo = np.flatnonzero(~allowed.any(axis=1))
      if redo.size == 0:
        break
      new_items, new_lengths = sample_list(rng, count_B[redo], digits_B[redo], self.equal_lengths)
      items[redo] = 0
      lengths[redo] = 1
      items[redo, : new_items.shape[1], : new_items.shape[2]] = new_items
      lengths[redo, : new_lengths.shape[1]] = new_lengths
    pick_B = np.argmax(np.where(allowed, rng.random(allowed.shape), -1.0), axis=1)
    return self.problem(items, lengths, count_B, pick_B)

  def problem(self, items_BxKxW: np.ndarray, length_BxK: np.ndarray, count_B: np.ndarray,
              pick_B: np.ndarray) -> Problem:
    """The problem for given lists (digits [B, K, W], lengths [B, K], count [B]) whose
    element pick_B[b] (an allowed query) is the query."""
    rank, sorted_rank = value_ranks(items_BxKxW, length_BxK, count_B)
    rows = np.arange(len(pick_B))
    query = Number(items_BxKxW[rows, pick_B], length_BxK[rows, pick_B].astype(np.int32))
    answer = self.answer(items_BxKxW, length_BxK, rank, sorted_rank, rank[rows, pick_B], count_B)
    return Problem(dg.split_items(items_BxKxW, length_BxK), (answer,), " ", layout="list",
                   prefix=self.prefix, query=query, operand_count_B=count_B)


def _element_with_rank(items_BxKxW, length_BxK, count_B, sorted_rank_BxK, wanted_B) -> Number:
  """The (first) listed element whose value rank is wanted_B[b]."""
  digits, lengths = sorted_list(items_BxKxW, length_BxK, count_B)
  k_B = np.argmax(sorted_rank_BxK == wanted_B[:, None], axis=1)
  rows = np.arange(len(k_B))
  return Number(digits[rows, k_B], lengths[rows, k_B].astype(np.int32))


@TASKS.register("successor_hint")
class SuccessorHint(_HintTask):
  """`H 5 3 9 1 ? 3 > 5 E`: the next larger element of the list. Axes (count >= 2, digits)."""

  min_count = 2
  prefix = "H"

  def candidates(self, rank_BxK, top_B):
    return rank_BxK < top_B[:, None]

  def answer(self, items_BxKxW, length_BxK, rank_BxK, sorted_rank_BxK, query_rank_B, count_B):
    return _element_with_rank(items_BxKxW, length_BxK, count_B, sorted_rank_BxK, query_rank_B + 1)


@TASKS.register("predecessor_hint")
class PredecessorHint(_HintTask):
  """`P 5 3 9 1 ? 3 > 1 E`: the next smaller element of the list. Axes (count >= 2, digits)."""

  min_count = 2
  prefix = "P"

  def candidates(self, rank_BxK, top_B):
    return rank_BxK > 0

  def answer(self, items_BxKxW, length_BxK, rank_BxK, sorted_rank_BxK, query_rank_B, count_B):
    return _element_with_rank(items_BxKxW, length_BxK, count_B, sorted_rank_BxK, query_rank_B - 1)


@TASKS.register("count_hint")
class CountHint(_HintTask):
  """`C 5 3 5 1 ? 5 > 2 E`: how often the query occurs in the list. Axes (count, digits)."""

  prefix = "C"

  def candidates(self, rank_BxK, top_B):
    return np.ones(rank_BxK.shape, bool)

  def answer(self, items_BxKxW, length_BxK, rank_BxK, sorted_rank_BxK, query_rank_B, count_B):
    listed = np.arange(rank_BxK.shape[1]) < count_B[:, None]
    return Number.from_array(((rank_BxK == query_rank_B[:, None]) & listed).sum(axis=1))
