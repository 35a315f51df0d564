"""Bucket sort (Ruoss et al. 2023 / Deletang et al. 2023): `10204112 -> 00111224`."""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.text import Number, Problem


@TASKS.register("bucket_sort")
class BucketSort:
  """Sort a string of symbols 0..alphabet-1 (digits) ascending; axis (length,).

  Option alphabet (2..10, default 5 as in google-deepmind/randomized_positional_encodings'
  BucketSort `vocab_size=5`). Operand and answer are digit strings (leading zeros allowed),
  stored like numbers: digits_BxW[:, j] is the j-th character from the right.
  """

  length_axes = ("length",)

  def __init__(self, alphabet: int = 5):
    if not 2 <= alphabet <= 10:
      raise ValueError(f"alphabet={alphabet} must lie in 2..10 (symbols are the digits)")
    self.alphabet = alphabet

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Row b: a random string of exactly lengths_BxK[b, 0] symbols, and it sorted."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    length_B = lengths_BxK[:, 0].astype(np.int32)
    digits = dg.random_digits(rng, length_B, base=self.alphabet, leading_nonzero=False)
    string = Number(digits, length_B)
    return Problem((string,), (sort_digit_string(string),), "", layout="digit_string")


def sort_digit_string(string: Number) -> Number:
  """The digit strings with their characters in ascending order (as written, left to right)."""
  valid = np.arange(string.digits_BxW.shape[1]) < string.length_B[:, None]
  # Ascending from the left is descending in storage order (from the right).
  ordered = -np.sort(np.where(valid, -string.digits_BxW, 1), axis=1)
  return Number(np.where(valid, ordered, 0).astype(np.int8), string.length_B)
