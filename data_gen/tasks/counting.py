"""Counting: the successor form of Zhou et al. 2023 and the repeat form of Chang & Bisk 2025."""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.text import Number, Problem


@TASKS.register("counting_successor")
class CountingSuccessor:
  """`N 12 15 > 12 13 14 15 E`: given a and b, count a, a+1, ..., b (Zhou et al.'s RASP-L task).

  Axes (count, digits): count = b - a + 1 numbers to write (>= 1: an empty range is a
  ValueError), digits = the exact length of a.
  """

  length_axes = ("count", "digits")
  prefix = "N"

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Row b: a of exactly lengths_BxK[b, 1] digits, b = a + lengths_BxK[b, 0] - 1."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    count_B = lengths_BxK[:, 0].astype(np.int32)
    start = dg.random_number(rng, lengths_BxK[:, 1])
    k = int(count_B.max())
    width = start.digits_BxW.shape[1] + len(str(k)) + 1
    small = k + 9 <= np.iinfo(np.uint8).max  # units columns a_0 + i fit uint8
    columns = np.repeat(dg.widen(start.digits_BxW, width)[:, None, :].astype(np.uint8 if small else np.int64), k,
                        axis=1)
    columns[:, :, 0] += np.arange(k, dtype=columns.dtype)
    digits_BxKxW = dg.normalize(columns)
    length_BxK = dg.number_length(digits_BxKxW)
    answers = dg.split_items(digits_BxKxW, length_BxK)
    last = count_B[:, None] - 1
    end = Number(dg.gather_items(digits_BxKxW, last)[:, 0], dg.gather_items(length_BxK, last)[:, 0])
    return Problem((start, end), answers, " ", layout="list", prefix=self.prefix,
                   answer_count_B=count_B)


@TASKS.register("counting_repeat")
class CountingRepeat:
  """`R a a a > 1 2 3 E`: n copies of a symbol -> 1 2 ... n (Chang & Bisk 2025).

  Axis (count,): n >= 1. The operand is n itself; the "repeat" layout writes it as n
  copies of the symbol `op` ("a").
  """

  length_axes = ("count",)
  prefix = "R"

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Row b: n = lengths_BxK[b, 0]; answers 1..n (rng is unused: the problem is fixed)."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    count_B = lengths_BxK[:, 0].astype(np.int32)
    k = int(count_B.max())
    one_to_k = Number.from_array(np.arange(1, k + 1))
    answers = dg.split_items(np.repeat(one_to_k.digits_BxW[None], len(count_B), axis=0),
                             np.repeat(one_to_k.length_B[None], len(count_B), axis=0))
    return Problem((Number.from_array(count_B),), answers, "a", layout="repeat", prefix=self.prefix,
                   answer_count_B=count_B)
