"""Multiplication a * b with independently set operand lengths."""

import numpy as np

from data_gen.tasks import TASKS
from data_gen.tasks import digits as dg
from data_gen.text import Problem


@TASKS.register("multiplication")
class Multiplication:
  """a * b; axes (len_a, len_b). The product comes from a digit convolution plus carries."""

  length_axes = ("len_a", "len_b")

  def sample(self, rng: np.random.Generator, lengths_BxK: np.ndarray) -> Problem:
    """Problems with a of exactly len_a digits and b of exactly len_b digits."""
    lengths_BxK = dg.check_lengths(lengths_BxK, self.length_axes)
    a, b = dg.split_items(dg.random_digits(rng, lengths_BxK), lengths_BxK)
    return Problem((a, b), (dg.multiply(a, b),), "*")
