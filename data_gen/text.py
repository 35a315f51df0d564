"""Batches of numbers and of annotated text: the currency between tasks, formats and tokenizers.

A task draws a `Problem` whose operands and answers are `Number` batches (digit arrays,
least-significant digit first). A format writes a problem as a `Text` batch: right-padded
ASCII characters, each annotated with what a tokenizer and a position-ID rule need to know
(which number a character belongs to, the significance of a digit, whether it is part of
the answer). Everything is vectorized over the batch: there is no per-example Python loop.
"""

import dataclasses
from typing import Sequence

import numpy as np

PAD_CHAR = 0  # chars_BxT value beyond a row's length


@dataclasses.dataclass(frozen=True)
class Number:
  """A batch of non-negative integers as digits.

  digits_BxW: int8, least-significant digit first; zero beyond each row's length.
  length_B: int32, digits in each number (>= 1; the number 0 has length 1). No leading
    zeros: digits_BxW[b, length_B[b] - 1] != 0 unless the number is 0.
  """

  digits_BxW: np.ndarray
  length_B: np.ndarray

  @property
  def batch(self) -> int:
    return self.digits_BxW.shape[0]

  @classmethod
  def from_ints(cls, values: Sequence[int]) -> "Number":
    """Builds a batch from Python ints (for tests and small inputs, not the hot path)."""
    strs = [str(int(v)) for v in values]
    if any(s.startswith("-") for s in strs):
      raise ValueError(f"numbers must be non-negative, got {values}")
    width = max(len(s) for s in strs)
    digits = np.zeros((len(strs), width), np.int8)
    for b, s in enumerate(strs):
      digits[b, : len(s)] = [int(c) for c in reversed(s)]
    return cls(digits, np.array([len(s) for s in strs], np.int32))

  def to_ints(self) -> list[int]:
    """The numbers as Python ints (for tests)."""
    return [int("".join(str(d) for d in row[:n][::-1])) for row, n in zip(self.digits_BxW, self.length_B)]


@dataclasses.dataclass(frozen=True)
class Problem:
  """A batch of problems of one task.

  operands: the inputs, each a `Number` batch of the same batch size.
  answers: the outputs (one number for addition; several for sorting or counting).
  op: the operator character the plain format writes between operands ("+", "*", ...).
  """

  operands: tuple[Number, ...]
  answers: tuple[Number, ...]
  op: str

  @property
  def batch(self) -> int:
    return self.operands[0].batch


@dataclasses.dataclass(frozen=True)
class Text:
  """A batch of annotated ASCII strings, right-padded with PAD_CHAR.

  chars_BxT: uint8 character codes.
  sig_BxT: int16 significance of a digit within its number (0 = units digit, also for
    zero-padding digits, which continue the count); -1 for non-digit characters.
  num_BxT: int16 index of the number the character belongs to, in the order the format
    writes numbers (operands, then answers); -1 for characters outside numbers.
  target_BxT: bool, True on the characters the model must produce (the answer part).
  length_B: int32 characters in each row.
  """

  chars_BxT: np.ndarray
  sig_BxT: np.ndarray
  num_BxT: np.ndarray
  target_BxT: np.ndarray
  length_B: np.ndarray

  @property
  def batch(self) -> int:
    return self.chars_BxT.shape[0]

  def strings(self) -> list[str]:
    """Each row decoded to a Python string."""
    return [row[:n].tobytes().decode("ascii") for row, n in zip(self.chars_BxT, self.length_B)]


def const_text(s: str, batch: int, *, target: bool = False) -> Text:
  """The same literal string `s` in every row; its digits are not part of any number."""
  chars = np.frombuffer(s.encode("ascii"), np.uint8)
  shape = (batch, len(chars))
  return Text(
      chars_BxT=np.broadcast_to(chars, shape).copy(),
      sig_BxT=np.full(shape, -1, np.int16),
      num_BxT=np.full(shape, -1, np.int16),
      target_BxT=np.full(shape, target, bool),
      length_B=np.full(batch, len(chars), np.int32),
  )


def number_text(number: Number, index: int, *, reverse: bool = False, width: int | None = None,
                target: bool = False) -> Text:
  """Writes each number as digit characters.

  Args:
    number: the batch to write.
    index: the value written into num_BxT for these characters.
    reverse: write the least-significant digit first.
    width: zero-pad every number to this many digits (must be >= every length).
    target: mark the characters as part of the answer.
  """
  length = number.length_B
  if width is not None:
    if np.any(length > width):
      raise ValueError(f"padding width {width} is below an operand length {int(length.max())}")
    length = np.full_like(length, width)
  w = max(int(length.max()), 1)
  sig = np.arange(w)[None, :] if reverse else (length[:, None] - 1 - np.arange(w)[None, :])
  valid = np.arange(w)[None, :] < length[:, None]
  sig = np.where(valid, sig, 0)
  digits = np.zeros((number.batch, w), np.int8)
  src_w = min(w, number.digits_BxW.shape[1])
  digits[:, :src_w] = number.digits_BxW[:, :src_w]
  chars = np.take_along_axis(digits, sig, axis=1).astype(np.uint8) + ord("0")
  return Text(
      chars_BxT=np.where(valid, chars, PAD_CHAR).astype(np.uint8),
      sig_BxT=np.where(valid, sig, -1).astype(np.int16),
      num_BxT=np.where(valid, index, -1).astype(np.int16),
      target_BxT=valid & target,
      length_B=length.astype(np.int32),
  )


def concat(parts: Sequence[Text]) -> Text:
  """Concatenates texts row by row (ragged: each row's parts are joined without gaps)."""
  if not parts:
    raise ValueError("concat needs at least one part")
  batch = parts[0].batch
  offsets = np.cumsum([np.zeros(batch, np.int64)] + [p.length_B for p in parts], axis=0)
  total = offsets[-1]
  t = max(int(total.max()), 1)
  out = Text(
      chars_BxT=np.zeros((batch, t), np.uint8),
      sig_BxT=np.full((batch, t), -1, np.int16),
      num_BxT=np.full((batch, t), -1, np.int16),
      target_BxT=np.zeros((batch, t), bool),
      length_B=total.astype(np.int32),
  )
  rows = np.arange(batch)[:, None]
  for part, offset in zip(parts, offsets[:-1]):
    w = part.chars_BxT.shape[1]
    valid = np.arange(w)[None, :] < part.length_B[:, None]
    cols = offset[:, None] + np.arange(w)[None, :]
    r, c = np.broadcast_to(rows, valid.shape)[valid], cols[valid]
    out.chars_BxT[r, c] = part.chars_BxT[valid]
    out.sig_BxT[r, c] = part.sig_BxT[valid]
    out.num_BxT[r, c] = part.num_BxT[valid]
    out.target_BxT[r, c] = part.target_BxT[valid]
  return out
