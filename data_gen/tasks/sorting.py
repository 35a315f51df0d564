"""Sorting a list of numbers (Awasthi & Gupta 2023), with list length and digits controlled."""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.text import Problem


def sample_list(rng: np.random.Generator, count_B: np.ndarray, digits_B: np.ndarray,
                equal_lengths: bool) -> tuple[np.ndarray, np.ndarray]:
  """Lists of count_B[b] numbers: digits int8 [B, K, W] and lengths int32 [B, K].

  K = max count, W = max digits. Every number of row b has exactly digits_B[b] digits, or,
  without `equal_lengths`, a length uniform in 1..digits_B[b]. Entries at k >= count_B[b]
  are valid numbers that no format writes.
  """
  k = int(count_B.max())
  if equal_lengths:
    length_BxK = np.broadcast_to(digits_B[:, None], (len(digits_B), k))
  else:
    length_BxK = rng.integers(1, digits_B[:, None] + 1, (len(digits_B), k))
  length_BxK = length_BxK.astype(np.int32)
  return dg.random_digits(rng, length_BxK, int(digits_B.max())), length_BxK


def sorted_list(digits_BxKxW: np.ndarray, length_BxK: np.ndarray, count_B: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
  """The lists in ascending order (digits [B, K, W], lengths [B, K]); see `sample_list`."""
  order_BxK = dg.sort_order(digits_BxKxW, length_BxK, count_B)
  return dg.gather_items(digits_BxKxW, order_BxK), dg.gather_items(length_BxK, order_BxK)


@TASKS.register("sorting")
class Sorting:
  """`S 5 3 9 1 > 1 3 5 9 E`: sort a list ascending (repetitions allowed).

  Axes (count, digits): the list length and the digits per number. Option equal_lengths
  (default True): every number has exactly `digits` digits; False: each number's length is
  uniform in 1..digits (the row's longest may then be shorter).
  """

  length_axes = ("count", "digits")
  prefix = "S"

  def __init__(self, equal_lengths: bool = True):
    self.equal_lengths = equal_lengths

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Row b: a list of lengths_BxK[b, 0] numbers of lengths_BxK[b, 1] digits, and it sorted."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    count_B, digits_B = lengths_BxK[:, 0].astype(np.int32), lengths_BxK[:, 1]
    return self.problem(*sample_list(rng, count_B, digits_B, self.equal_lengths), count_B)

  def problem(self, items_BxKxW: np.ndarray, length_BxK: np.ndarray, count_B: np.ndarray) -> Problem:
    """The problem for given lists (digits [B, K, W], lengths [B, K], count [B])."""
    return Problem(dg.split_items(items_BxKxW, length_BxK),
                   dg.split_items(*sorted_list(items_BxKxW, length_BxK, count_B)), " ", layout="list",
                   prefix=self.prefix, operand_count_B=count_B, answer_count_B=count_B)
