"""Vectorized arithmetic on digit arrays (least-significant digit first), shared by the tasks.

Nothing here loops over examples: carries are resolved for the whole batch at once.
"""

import functools
import math

import numpy as np

from data_gen.text import Number, prefix_mask


def check_lengths(lengths_BxK: np.ndarray, axes: tuple[str, ...], minimum: dict[str, int] | None = None
                  ) -> np.ndarray:
  """Validates per-row lengths: int [B, len(axes)], each >= its minimum (default 1).

  Returns:
    The lengths as int64 [B, K].
  Raises:
    ValueError: wrong shape, or a length below its axis's minimum (naming axis and value).
  """
  lengths_BxK = np.asarray(lengths_BxK)
  if lengths_BxK.ndim != 2 or lengths_BxK.shape[1] != len(axes) or lengths_BxK.shape[0] < 1:
    raise ValueError(f"lengths must have shape [B>=1, {len(axes)}] for length axes {axes}; "
                     f"got shape {lengths_BxK.shape}")
  if not np.issubdtype(lengths_BxK.dtype, np.integer):
    raise ValueError(f"lengths must be integers; got dtype {lengths_BxK.dtype}")
  for k, axis in enumerate(axes):
    low = (minimum or {}).get(axis, 1)
    if lengths_BxK[:, k].min() < low:
      raise ValueError(f"length {axis}={int(lengths_BxK[:, k].min())} is below its minimum {low}")
  return lengths_BxK.astype(np.int64)


def _digit_table(base: int) -> np.ndarray:
  """uint32 [base**4]: entry i holds the 4 base-`base` digits of i (least significant first),
  one per byte."""
  i = np.arange(base ** 4)
  return ((i[:, None] // base ** np.arange(4)) % base).astype(np.int8).view(np.uint32)[:, 0]


_DECIMAL_TABLE = _digit_table(10)


def uniform_digits(rng: np.random.Generator, shape: tuple[int, ...], base: int = 10) -> np.ndarray:
  """int8 [*shape] digits uniform in [0, base), base <= 16, by exact rejection sampling.

  The bit generator's raw 64-bit outputs are cut into little-endian 16-bit pieces; a piece
  below the largest multiple of base**4 that fits 16 bits gives 4 digits (its remainder
  modulo base**4, through a table), the others are dropped. Much faster than bounded draws
  one by one.
  """
  n = math.prod(shape)
  table = _DECIMAL_TABLE if base == 10 else _digit_table(base)
  block = base ** 4
  limit = (1 << 16) // block * block
  need = -(-n // 4)
  pieces, got = [], 0
  while got < need:
    expected = (need - got) * (1 << 16) // limit
    raw = rng.bit_generator.random_raw(-(-expected // 4) + expected // 64 + 8).astype("<u8")
    piece = raw.view("<u2")
    piece = piece[piece < limit]
    pieces.append(piece)
    got += piece.size
  draws = (pieces[0] if len(pieces) == 1 else np.concatenate(pieces))[:need]
  draws -= draws // block * block if block < limit else 0  # the remainder (integer division is the fast op)
  return table.take(draws).view(np.int8)[:n].reshape(shape)


def random_digits(rng: np.random.Generator, length_S: np.ndarray, width: int | None = None,
                  *, base: int = 10, leading_nonzero: bool = True) -> np.ndarray:
  """Random numbers with exact lengths, as digits: int8 [*S, W], least-significant first.

  Digits are uniform in [0, base); with `leading_nonzero`, the leading digit of a number
  of two or more digits is uniform in [1, base) (a one-digit number may be 0). Zero beyond
  each length.

  Args:
    length_S: int array of any shape S, the number of digits of each number (>= 1).
    width: W, at least the longest length (default: the longest length).
  """
  length_S = np.asarray(length_S)
  width = int(length_S.max()) if width is None else width
  digits = uniform_digits(rng, length_S.shape + (width,), base)
  flat = digits.reshape(-1, width)
  length_N = length_S.reshape(-1)
  full = int(length_N.min()) == width  # every number fills the width
  if leading_nonzero and full and width > 1:
    flat[:, -1] = rng.integers(1, base, len(flat), dtype=np.int8)
  elif leading_nonzero:
    rows = np.flatnonzero(length_N > 1)
    flat.reshape(-1)[rows * width + length_N[rows] - 1] = rng.integers(1, base, rows.size, dtype=np.int8)
  if not full:
    flat *= prefix_mask(length_N, width).view(np.int8)
  return digits


def random_number(rng: np.random.Generator, length_B: np.ndarray) -> Number:
  """Random numbers with exact lengths int [B] (no leading zeros; a 1-digit number may be 0)."""
  return Number(random_digits(rng, length_B), np.asarray(length_B, np.int32))


def number_length(digits_SxW: np.ndarray) -> np.ndarray:
  """int32 [*S]: the position of the highest nonzero digit + 1 (1 for the number 0).

  Many short numbers go column by column (one operation over all numbers per column; a
  reduction along a short last axis pays per number), long ones by an argmax per number.
  """
  w = digits_SxW.shape[-1]
  if w <= 8:
    length = np.ones(digits_SxW.shape[:-1], np.int32)
    for j in range(1, w):
      length[digits_SxW[..., j] != 0] = j + 1
    return length
  nonzero = digits_SxW[..., ::-1] != 0
  return np.where(nonzero.any(axis=-1), w - nonzero.argmax(axis=-1), 1).astype(np.int32)


def normalize(columns_SxW: np.ndarray) -> np.ndarray:
  """Resolves carries: the digits of sum_i columns[..., i] * 10**i, as int8 [*S, W].

  Columns hold non-negative integers (column sums of many operands, or of a digit
  convolution). First, while some column exceeds 18, one vectorized pass moves every
  column's tens into the next column. Then every carry is 0 or 1, and the carries ride on
  binary ones, eight columns per 64-bit word: column i is byte i of a little-endian word
  holding column + 246, so a byte overflows (carrying 1 into the next byte, and from the
  top byte into the next word) exactly when column + incoming carry >= 10; it then holds
  the digit, else the digit + 246.
  Raises:
    ValueError: the top column carries (W too small).
  """
  shape, w = columns_SxW.shape, columns_SxW.shape[-1]
  s = columns_SxW.reshape(-1, w)
  top = int(s.max(initial=0))
  if top > 18:
    if top + top // 10 > np.iinfo(s.dtype).max:  # a column plus the tens it receives must fit
      s = s.astype(np.int64)
    while int(s.max()) > 18:
      tens = s // 10
      if tens[:, -1].any():
        raise ValueError(f"normalize: the top column carries; widen the digit array beyond {w} columns")
      s = s - 10 * tens
      s[:, 1:] += tens[:, :-1]
  columns = np.zeros((len(s), _carry_width(w)), np.uint8)
  columns[:, :w] = s
  return _carry(columns, w).reshape(shape)


def _carry_width(w: int) -> int:
  """Columns of the buffer `_carry` needs for w digits: whole 64-bit words, one spare byte."""
  return 8 * (w // 8 + 1)


def _carry(columns_NxC: np.ndarray, w: int) -> np.ndarray:
  """`normalize` of uint8 columns (each <= 18) in a zero-padded buffer of `_carry_width(w)`
  columns: int8 [N, w].

  The words of all rows are one flat array: a word's carry goes to the next word, and the top
  word of a row (whose spare byte absorbs any carry) never carries into the next row's. A
  carry that overflows a word again (all its bytes 255) is passed on in another round.
  """
  word_M = columns_NxC.view("<u8").reshape(-1)
  total_M = word_M + np.uint64(0xF6F6F6F6F6F6F6F6)  # 246 = 256 - 10 in every byte
  carry_M = total_M < word_M
  while carry_M.any():
    receives = total_M[1:]
    before = receives.copy()
    receives += carry_M[:-1]
    carry_M = np.concatenate([[False], receives < before])
  total_NxC = total_M.astype("<u8", copy=False).view(np.uint8).reshape(columns_NxC.shape)
  if np.any(total_NxC[:, w] != 246):
    raise ValueError(f"normalize: the top column carries; widen the digit array beyond {w} columns")
  np.minimum(total_NxC, total_NxC + np.uint8(10), out=total_NxC)  # uint8: digit + 246 + 10 wraps
  return total_NxC[:, :w].view(np.int8)


def widen(digits_SxW: np.ndarray, width: int) -> np.ndarray:
  """The digit axis with exactly `width` columns: zero-padded, or cut where the columns are
  beyond every number's length (and so zero)."""
  out = np.zeros(digits_SxW.shape[:-1] + (width,), digits_SxW.dtype)
  kept = min(width, digits_SxW.shape[-1])
  out[..., :kept] = digits_SxW[..., :kept]
  return out


def add(numbers: tuple[Number, ...]) -> Number:
  """The sum of n >= 1 numbers per row (vectorized carry propagation)."""
  batch, extra = numbers[0].batch, len(str(len(numbers) - 1))  # the sum is below 10**(longest + extra)
  w = max(n.digits_BxW.shape[1] for n in numbers) + extra
  if len(numbers) <= 2:  # column sums <= 18: carries straight away
    columns = np.zeros((batch, _carry_width(w)), np.uint8)
    for n in numbers:
      columns[:, : n.digits_BxW.shape[1]] += n.digits_BxW.view(np.uint8)
    digits = _carry(columns, w)
  else:
    columns = np.zeros((batch, w), np.int16)
    for n in numbers:
      columns[:, : n.digits_BxW.shape[1]] += n.digits_BxW
    digits = normalize(columns)
  # The sum has at least the longest operand's length m, so only its digits at m .. m +
  # extra - 1 can lengthen it.
  m_B = functools.reduce(np.maximum, [n.length_B for n in numbers])
  beyond = np.take_along_axis(digits, m_B[:, None] + np.arange(extra), axis=1) != 0
  length = m_B + (beyond * np.arange(1, extra + 1)).max(axis=1)  # 1 + the highest nonzero one
  return Number(digits[:, : int(length.max())], length.astype(np.int32))


def multiply(a: Number, b: Number) -> Number:
  """a * b per row: schoolbook digit convolution, then carry normalisation.

  The loop runs over the digit positions of b (not over examples): column i + j collects
  a_i * b_j for the whole batch at once.
  """
  wa, wb = a.digits_BxW.shape[1], b.digits_BxW.shape[1]
  columns = np.zeros((a.batch, wa + wb), np.int32)
  a32 = a.digits_BxW.astype(np.int32)
  for j in range(wb):
    columns[:, j:j + wa] += a32 * b.digits_BxW[:, j:j + 1]
  digits = normalize(columns)
  length = number_length(digits)
  return Number(digits[:, : int(length.max())], length)


def sort_order(digits_BxKxW: np.ndarray, length_BxK: np.ndarray, count_B: np.ndarray) -> np.ndarray:
  """Ascending order of the first count_B[b] numbers of each row (stable among equals).

  Numbers of at most 18 digits sort by their int64 values (one stable argsort); longer ones
  by one vectorized lexsort over (length, most significant digit, ..., units digit): with no
  leading zeros this is numeric order. Entries at k >= count_B[b] sort last.
  Returns:
    int [B, K] indices into axis K.
  """
  k, w = digits_BxKxW.shape[1:]
  listed_BxK = np.arange(k) < count_B[:, None]
  if w <= 18:
    value_BxK = digits_BxKxW @ 10 ** np.arange(w, dtype=np.int64)
    return np.argsort(np.where(listed_BxK, value_BxK, np.iinfo(np.int64).max), axis=-1, kind="stable")
  key_length = np.where(listed_BxK, length_BxK, np.iinfo(np.int32).max)
  keys = np.concatenate([np.moveaxis(digits_BxKxW, -1, 0), key_length[None]], axis=0)
  return np.lexsort(keys, axis=-1)


def gather_items(values_BxK: np.ndarray, index_BxN: np.ndarray) -> np.ndarray:
  """values[b, index[b, n]] for arrays [B, K] or [B, K, W] (the trailing axis follows)."""
  if values_BxK.ndim == 3:
    return np.take_along_axis(values_BxK, index_BxN[..., None], axis=1)
  return np.take_along_axis(values_BxK, index_BxN, axis=1)


def split_items(digits_BxKxW: np.ndarray, length_BxK: np.ndarray) -> tuple[Number, ...]:
  """The K numbers of each row as a tuple of K Number batches."""
  return tuple(Number(digits_BxKxW[:, k], length_BxK[:, k].astype(np.int32))
               for k in range(digits_BxKxW.shape[1]))
