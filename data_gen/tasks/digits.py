"""Vectorized arithmetic on digit arrays (least-significant digit first), shared by the tasks.

Nothing here loops over examples: carries are resolved for the whole batch at once.
"""

import numpy as np

from data_gen.text import Number


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


def random_digits(rng: np.random.Generator, length_S: np.ndarray, width: int | None = None,
                  *, low: int = 0, high: int = 10, leading_nonzero: bool = True) -> np.ndarray:
  """Random numbers with exact lengths, as digits: int8 [*S, W], least-significant first.

  Digits are uniform in [low, high); with `leading_nonzero`, the leading digit of a number
  of two or more digits is uniform in [max(low, 1), high) (a one-digit number may be 0).
  Zero beyond each length.

  Args:
    length_S: int array of any shape S, the number of digits of each number (>= 1).
    width: W, at least the longest length (default: the longest length).
  """
  length_S = np.asarray(length_S)
  width = int(length_S.max()) if width is None else width
  digits = rng.integers(low, high, length_S.shape + (width,), dtype=np.int8)
  if leading_nonzero:
    lead_S = rng.integers(max(low, 1), high, length_S.shape, dtype=np.int8)
    top_S = (length_S - 1)[..., None]
    current = np.take_along_axis(digits, top_S, axis=-1)
    np.put_along_axis(digits, top_S, np.where((length_S > 1)[..., None], lead_S[..., None], current), -1)
  digits[np.arange(width) >= length_S[..., None]] = 0
  return digits


def random_number(rng: np.random.Generator, length_B: np.ndarray) -> Number:
  """Random numbers with exact lengths int [B] (no leading zeros; a 1-digit number may be 0)."""
  return Number(random_digits(rng, length_B), np.asarray(length_B, np.int32))


def number_length(digits_SxW: np.ndarray) -> np.ndarray:
  """int32 [*S]: the position of the highest nonzero digit + 1 (1 for the number 0)."""
  w = digits_SxW.shape[-1]
  nonzero = digits_SxW[..., ::-1] != 0
  return np.where(nonzero.any(axis=-1), w - nonzero.argmax(axis=-1), 1).astype(np.int32)


def normalize(columns_SxW: np.ndarray) -> np.ndarray:
  """Resolves carries: the digits of sum_i columns[..., i] * 10**i, as int8 [*S, W].

  Columns hold non-negative integers. W must leave room for the final carry (the top
  column is not allowed to produce one). Large columns are first reduced by a few
  vectorized divide-and-shift passes until every column is <= 18; then each carry is 0 or
  1 and equals the "generate" bit (column >= 10) of the nearest column below it that does
  not merely "propagate" (column != 9): a running maximum of indices finds that column
  for every position at once.
  """
  s = columns_SxW
  if s.size and int(s.max()) > 18:
    s = s.astype(np.int64)
    while int(s.max()) > 18:
      high = s // 10
      if high[..., -1].any():
        raise ValueError("normalize: the top column carries; widen the digit array")
      s = s - 10 * high
      s[..., 1:] += high[..., :-1]
  w = s.shape[-1]
  s = s.astype(np.int8)
  stops = np.where(s != 9, np.arange(w, dtype=np.int16), -1).astype(np.int16)
  last_stop = np.maximum.accumulate(stops, axis=-1)
  carry_out = np.take_along_axis(s >= 10, np.maximum(last_stop, 0), axis=-1) & (last_stop >= 0)
  if w and carry_out[..., -1].any():
    raise ValueError("normalize: the top column carries; widen the digit array")
  digits = s.copy()
  digits[..., 1:] += carry_out[..., :-1]
  return np.where(digits >= 10, digits - 10, digits).astype(np.int8)


def widen(digits_SxW: np.ndarray, width: int) -> np.ndarray:
  """Zero-pads the digit axis to `width` (>= its current width)."""
  pad = [(0, 0)] * (digits_SxW.ndim - 1) + [(0, width - digits_SxW.shape[-1])]
  return np.pad(digits_SxW, pad)


def add(numbers: tuple[Number, ...]) -> Number:
  """The sum of n >= 1 numbers per row (vectorized carry propagation)."""
  w = max(n.digits_BxW.shape[1] for n in numbers) + len(str(len(numbers) - 1)) + 1
  columns = sum(widen(n.digits_BxW, w).astype(np.int16) for n in numbers)
  digits = normalize(columns)
  length = number_length(digits)
  return Number(digits[:, : int(length.max())], length)


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

  One vectorized lexsort over (length, most significant digit, ..., units digit): with no
  leading zeros this is numeric order. Entries at k >= count_B[b] sort last.
  Returns:
    int [B, K] indices into axis K.
  """
  k = digits_BxKxW.shape[1]
  key_length = np.where(np.arange(k) < count_B[:, None], length_BxK, np.iinfo(np.int32).max)
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
