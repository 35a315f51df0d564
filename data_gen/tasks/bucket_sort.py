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
    valid = np.arange(digits.shape[1]) < length_B[:, None]
    # Written left to right ascending = stored (from the right) descending.
    ordered = -np.sort(np.where(valid, -digits, 1), axis=1)
    ordered = np.where(valid, ordered, 0).astype(np.int8)
    return Problem((Number(digits, length_B),), (Number(ordered, length_B),), "",
                   layout="digit_string")
