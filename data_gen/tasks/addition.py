"""Addition of n operands with independently set lengths; optionally Lee et al.'s balanced carries.

Balanced carries (Lee et al. 2023 balance their 3-digit training sets so that every number
of carry operations 0..3 is equally frequent, by rejection). With exact lengths (and any
length) rejection becomes hopeless for many carries, so the balanced sampler constructs
problems instead, for two operands:
  1. the number of carries k (columns whose sum produces a carry, the final one included)
     is uniform over its achievable range 0..max(len_a, len_b);
  2. the carrying columns: min(k, m) of the m = min(len_a, len_b) columns where both
     operands have digits, uniformly; if k > m, every such column carries and so do the
     next k - m columns of the longer operand (which must then hold 9s);
  3. the digits of each column: uniform among the digit pairs that produce exactly that
     carry from that incoming carry, respecting the operand lengths (a leading digit is
     never 0; a missing digit is 0).
"""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.text import Number, Problem

# Operand digit states in a column: 0 absent (beyond the length), 1 leading digit of a
# number of >= 2 digits (1..9), 2 any other digit (0..9).
_DIGITS_BY_STATE = (range(0, 1), range(1, 10), range(0, 10))


def _pair_table() -> tuple[np.ndarray, np.ndarray]:
  """Valid digit pairs per (carry in, carry out, state a, state b): pairs [2,2,3,3,100], counts."""
  pairs = np.zeros((2, 2, 3, 3, 100), np.int8)
  counts = np.zeros((2, 2, 3, 3), np.int64)
  for c_in in range(2):
    for c_out in range(2):
      for sa in range(3):
        for sb in range(3):
          valid = [10 * x + y for x in _DIGITS_BY_STATE[sa] for y in _DIGITS_BY_STATE[sb]
                   if (x + y + c_in >= 10) == bool(c_out)]
          pairs[c_in, c_out, sa, sb, : len(valid)] = valid
          counts[c_in, c_out, sa, sb] = len(valid)
  return pairs, counts


_PAIRS, _PAIR_COUNTS = _pair_table()


def _digit_states(length_B: np.ndarray, width: int) -> np.ndarray:
  col = np.arange(width)
  leading = (col == length_B[:, None] - 1) & (length_B[:, None] > 1)
  return np.where(col >= length_B[:, None], 0, np.where(leading, 1, 2))


def balanced_carry_operands(rng: np.random.Generator, len_a: np.ndarray, len_b: np.ndarray
                            ) -> tuple[Number, Number]:
  """Two operands with exact lengths whose number of carries is uniform (module docstring)."""
  batch = len_a.shape[0]
  longest, shortest = np.maximum(len_a, len_b), np.minimum(len_a, len_b)
  width = int(longest.max())
  col = np.arange(width)
  carries_B = rng.integers(0, longest + 1)
  keys = np.where(col < shortest[:, None], rng.random((batch, width)), np.inf)
  rank = np.argsort(np.argsort(keys, axis=1), axis=1)
  carry_out = (rank < np.minimum(carries_B, shortest)[:, None]) | (
      (col >= shortest[:, None]) & (col < carries_B[:, None]))
  carry_in = np.zeros_like(carry_out)
  carry_in[:, 1:] = carry_out[:, :-1]
  index = (carry_in.astype(np.int64), carry_out.astype(np.int64),
           _digit_states(len_a, width), _digit_states(len_b, width))
  choice = (rng.random((batch, width)) * _PAIR_COUNTS[index]).astype(np.int64)
  pair = _PAIRS[index + (choice,)]
  return (Number((pair // 10).astype(np.int8), len_a.astype(np.int32)),
          Number((pair % 10).astype(np.int8), len_b.astype(np.int32)))


def count_carries(a: Number, b: Number) -> np.ndarray:
  """int [B]: columns of a + b that produce a carry (Lee et al.'s number of carry operations)."""
  digit_sum = lambda n: n.digits_BxW.astype(np.int64).sum(axis=1)
  return (digit_sum(a) + digit_sum(b) - digit_sum(dg.add((a, b)))) // 9


@TASKS.register("addition")
class Addition:
  """a_0 + a_1 + ... + a_{n-1}; each operand's length is its own axis len_i.

  Options: n_operands (>= 2), balanced_carries (two operands only; module docstring).
  """

  def __init__(self, n_operands: int = 2, balanced_carries: bool = False):
    if n_operands < 2:
      raise ValueError(f"n_operands={n_operands} is below its minimum 2")
    if balanced_carries and n_operands != 2:
      raise ValueError(f"balanced_carries needs n_operands=2; got n_operands={n_operands}")
    self.n_operands = n_operands
    self.balanced_carries = balanced_carries
    self.length_axes = tuple(f"len_{i}" for i in range(n_operands))

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Problems with operand i of exactly lengths_BxK[:, i] digits."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    if self.balanced_carries:
      operands = balanced_carry_operands(rng, lengths_BxK[:, 0], lengths_BxK[:, 1])
    else:
      operands = dg.split_items(dg.random_digits(rng, lengths_BxK), lengths_BxK)
    return Problem(operands, (dg.add(operands),), "+")

  def n_strata(self, ranges) -> int:
    """Strata of a balanced fixed training set (data_gen.train_set): 0..longest carries."""
    if self.n_operands != 2:
      raise ValueError(f"balancing a training set by carries needs n_operands=2; got n_operands={self.n_operands}")
    return max(hi for _, hi in ranges) + 1

  def stratum(self, problem: Problem) -> np.ndarray:
    """int [B]: each problem's number of carries (see `count_carries`)."""
    return count_carries(*problem.operands[:2])
