"""Position-ID rules: a TokenBatch becomes the position IDs an encoding consumes.

Every rule is registered in POSITIONS and called as

  rule(tb, rng, *, train, **options) -> int32 ids [B, T] (or [B, T, L] for multi-level)

with 0 at padding (t >= length_B). `rng` is a np.random.Generator; `train` switches the
training-time randomization. Rules read only token-level annotations (sig, num, target,
length) and never the digits' values, so the IDs of answer slots are known before the
answer is generated.

Token-level notions shared by the rules:
  digit token: sig >= 0 (a digit of a number, or a chunk of digits: a chunk counts as one
    "digit" everywhere below). Special tokens, separators and digits outside numbers are
    not digit tokens.
  run: a maximal stretch of consecutive tokens with the same num >= 0 (one number as
    written; a comma separator stays inside its number's run).
  place: the dense rank of a digit token's sig among the sig values present in its row
    (0 = the units digit). For one-digit tokens it equals sig; for r2l chunks of k digits
    of numbers written most-significant digit first it is sig // k; in general, tokens whose
    lowest digits have equal significance share a place, and places are consecutive.

Rules:
  sequential  t for the t-th token (BOS, when present, is 0).
  abacus      McLeish et al.: 0 for non-digit tokens; the j-th digit token (1-based, in
              written order) of each run gets j; in training one offset k ~ U{0..max_offset}
              per batch is added to every nonzero ID (k = 0 at test).
              `3 2 1 + 7 6 5 4 = 0 9 6 4` -> `1 2 3 0 1 2 3 4 0 1 2 3 4`.
  coupling    Cho et al.: digit tokens get s + 1 + place, other tokens s, special tokens
              (BOS, EOS, task prefix) 0. s ~ U{1..max_pos - n_places} per example in
              training (n_places = distinct places in the row, the answer length when the
              format pads it), s = 1 at test, so IDs never exceed max_pos (an embedding
              table needs max_pos + 1 rows). For 123+4567 written `0123+4567=09640`:
              `5 4 3 2 1 5 4 3 2 1 2 3 4 5 6`. As in the authors' current code
              (HanseulJo/position-coupling, src/data/addition.py: the least significant digit
              has the least ID) and their tokenization, where BOS and EOS get position 0.
              levels=2 adds a second level [B, T, 2] for multi-operand addition and
              multiplication (their scratchpad variants): the index of the number within its
              part (prompt numbers = operands count 0, 1, ...; answer numbers = scratchpad
              steps count 0, 1, ... again, so operand i and step i share an ID, as in their
              code), plus s2 ~ U{1..max_pos_number - max_index} (1 at test). Parts are told
              apart by `target` (answer = target tokens). A token outside numbers takes the
              level-2 ID of the next number in its row (a separator belongs to the number it
              introduces; their code attaches a `+` to the preceding operand when operands
              are not reversed), or 0 after the last number; specials get 0. Their
              3-level multiplication-scratchpad IDs are not provided.
  randomized  Ruoss et al.: the valid tokens of a row get a sorted uniformly random subset
              of {0..L-1}, drawn per example (their code draws one subset per batch for
              equal-length sequences). At test the IDs are randomized too, as the authors do,
              from np.random.default_rng(test_seed), so evaluation is reproducible whatever
              rng the caller passes; a row then draws for its prompt plus the batch's longest
              answer, so that its IDs do not reveal its answer's length.
"""

import numpy as np

from data_gen.registry import Registry
from data_gen.text import prefix_mask, prefix_rows
from data_gen.tokenizers import NUM_SPECIAL, TokenBatch

POSITIONS = Registry("position rule")


def _masked(ids_BxT: np.ndarray, valid_BxT: np.ndarray) -> np.ndarray:
  return np.where(valid_BxT, ids_BxT, 0).astype(np.int32)


@POSITIONS.register("sequential")
def sequential(tb: TokenBatch, rng: np.random.Generator, *, train: bool) -> np.ndarray:
  """int32 [B, T]: 0, 1, 2, ... along each row; 0 at padding."""
  del rng, train
  return prefix_rows(tb.length_B, np.arange(tb.tokens_BxT.shape[1], dtype=np.int32))


def _digits(tb: TokenBatch) -> np.ndarray:
  """int [N]: flat (row-major) indices of the digit tokens (sig >= 0)."""
  return np.flatnonzero(tb.sig_BxT >= 0)


def _digit_order(tb: TokenBatch, digits_N: np.ndarray) -> np.ndarray:
  """int32 [N]: j for the j-th digit token (1-based, written order) of its run.

  A run's first token is a digit (separators sit between chunks), so the runs' first tokens
  split the digit list into runs.
  """
  num = tb.num_BxT
  run_start = num >= 0
  run_start[:, 1:] &= num[:, 1:] != num[:, :-1]
  is_first = np.take(run_start.ravel(), digits_N)
  is_first[:1] = True
  first = np.flatnonzero(is_first)
  count = np.diff(first, append=digits_N.size)
  return (np.arange(1, digits_N.size + 1) - np.repeat(first, count)).astype(np.int32)


def _digit_place(tb: TokenBatch, digits_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(place int32 [N], n_places int32 [B]): the dense rank of each digit token's sig among
  the sig values present in its row, and the number of distinct values in each row."""
  batch, width = tb.sig_BxT.shape
  sig = np.take(tb.sig_BxT.ravel(), digits_N).astype(np.int64)
  span = int(sig.max(initial=-1)) + 1
  key = digits_N // width * span + sig
  present = np.zeros(batch * span, bool)
  present[key] = True
  rank_BxS = np.cumsum(present.reshape(batch, span), axis=1, dtype=np.int32)
  n_places = rank_BxS[:, -1] if span else np.zeros(batch, np.int32)
  return np.take(rank_BxS.ravel(), key) - 1, n_places


@POSITIONS.register("abacus")
def abacus(tb: TokenBatch, rng: np.random.Generator, *, train: bool,
           max_offset: int = 100) -> np.ndarray:
  """int32 [B, T] Abacus IDs (see module doc); offset k ~ U{0..max_offset} per batch in training."""
  if max_offset < 0:
    raise ValueError(f"abacus max_offset {max_offset} must be >= 0")
  offset = int(rng.integers(0, max_offset + 1)) if train else 0
  digits = _digits(tb)
  ids = np.zeros(tb.tokens_BxT.shape, np.int32)
  ids.ravel()[digits] = _digit_order(tb, digits) + offset
  return ids


def _random_starts(rng: np.random.Generator, needed_B: np.ndarray, max_pos: int, name: str,
                   train: bool) -> np.ndarray:
  """int [B]: s ~ U{1..max_pos - needed_B} per row in training, 1 at test."""
  if np.any(max_pos - needed_B < 1):
    need = int(needed_B.max()) + 1
    raise ValueError(f"coupling {name}={max_pos} is too small: a row needs IDs up to {need}; "
                     f"set {name} >= {need}")
  if not train:
    return np.ones_like(needed_B)
  return rng.integers(1, max_pos - needed_B + 1)


def _number_index(tb: TokenBatch) -> np.ndarray:
  """int [B, T]: index of a token's number within its part (prompt or answer), -1 outside."""
  num = tb.num_BxT.astype(np.int64)
  big = np.iinfo(np.int16).max
  first_prompt = np.where((num >= 0) & ~tb.target_BxT, num, big).min(axis=1, keepdims=True)
  first_answer = np.where((num >= 0) & tb.target_BxT, num, big).min(axis=1, keepdims=True)
  return np.where(num >= 0, num - np.where(tb.target_BxT, first_answer, first_prompt), -1)


@POSITIONS.register("coupling")
def coupling(tb: TokenBatch, rng: np.random.Generator, *, train: bool, max_pos: int,
             levels: int = 1, max_pos_number: int | None = None) -> np.ndarray:
  """int32 [B, T] (levels=1) or [B, T, 2] (levels=2) position-coupling IDs (see module doc).

  max_pos: largest level-1 ID (the table has max_pos + 1 rows).
  max_pos_number: largest level-2 ID; required when levels == 2.
  """
  if levels not in (1, 2):
    raise ValueError(f"coupling levels {levels} unknown; choose one of: 1, 2")
  valid = tb.tokens_BxT >= NUM_SPECIAL  # neither padding nor a special token
  digits = _digits(tb)
  place, n_places = _digit_place(tb, digits)
  s = _random_starts(rng, n_places, max_pos, "max_pos", train).astype(np.int32)
  ids = np.where(valid, s[:, None], 0)
  ids.ravel()[digits] = np.take(s, digits // ids.shape[1]) + 1 + place
  if levels == 1:
    return ids
  if max_pos_number is None:
    raise ValueError("coupling levels=2 needs max_pos_number (the largest level-2 ID)")
  index = _number_index(tb)
  s2 = _random_starts(rng, index.max(axis=1, initial=0), max_pos_number, "max_pos_number",
                      train)[:, None]
  t = np.arange(index.shape[1])
  next_t = np.minimum.accumulate(np.where(index >= 0, t, index.shape[1])[:, ::-1], axis=1)
  next_t = next_t[:, ::-1]
  has_next = next_t < index.shape[1]
  next_index = np.take_along_axis(index, np.minimum(next_t, index.shape[1] - 1), axis=1)
  level2 = _masked(np.where(has_next, s2 + next_index, 0), valid)
  return np.stack([ids, level2], axis=-1)


def sorted_subsets(rng: np.random.Generator, size_B: np.ndarray, width: int, L: int) -> np.ndarray:
  """int32 [B, width]: row b starts with a sorted uniformly random size_B[b]-subset of
  {0..L-1}, then zeros. Floyd's algorithm, vectorized over rows: the i-th draw is
  t_i ~ U{0..L-n+i}, replaced by L-n+i when already chosen; t_i is already chosen exactly
  when it equals an earlier t_k, or equals L-n+k for an earlier replaced draw k."""
  batch = size_B.shape[0]
  i = np.arange(width)
  top = L - size_B[:, None] + i  # L-n+i
  valid = i < size_B[:, None]
  draw = np.minimum((rng.random((batch, width)) * (top + 1)).astype(np.int64), top)
  key = np.sort(np.where(valid, draw, L) * width + i, axis=1)  # by value, then by index
  later = (key[:, 1:] // width == key[:, :-1] // width) & (key[:, 1:] < L * width)
  repeat = np.zeros((batch, width), bool)
  repeat[np.nonzero(later)[0], key[:, 1:][later] % width] = True
  k = draw - (L - size_B[:, None])
  chain = valid & (k >= 0) & (k < i)
  k = np.clip(k, 0, width - 1)
  replaced = repeat
  while True:
    updated = replaced | (chain & np.take_along_axis(replaced, k, axis=1))
    if np.array_equal(updated, replaced):
      break
    replaced = updated
  chosen = np.where(valid, np.where(replaced, top, draw), L).astype(np.int32)
  return _masked(np.sort(chosen, axis=1), valid)


@POSITIONS.register("randomized")
def randomized(tb: TokenBatch, rng: np.random.Generator, *, train: bool, L: int = 2048,
               test_seed: int = 0) -> np.ndarray:
  """int32 [B, T]: sorted random subsets of {0..L-1} for the valid tokens (see module doc).

  At test time a row draws for its prompt plus the longest answer (target suffix) of the
  batch and keeps the first IDs it needs, so that no ID depends on the row's own answer
  length: the answer slots a decoder fills get the same IDs whatever the answer.
  """
  batch, t = tb.tokens_BxT.shape
  size_B = tb.length_B.astype(np.int64)
  if not train:
    rng = np.random.default_rng(test_seed)
    prompt_B = size_B - np.count_nonzero(tb.target_BxT, axis=1)
    size_B = prompt_B + int((size_B - prompt_B).max(initial=0))
  longest = int(size_B.max(initial=0))
  if L < longest:
    raise ValueError(f"randomized positions: L={L} is smaller than a sequence of {longest} "
                     f"tokens; set L >= {longest}")
  ids = sorted_subsets(rng, size_B, max(t, longest), L)[:, :t]
  return ids if train else np.where(prefix_mask(tb.length_B, t), ids, 0)  # test: 0 beyond the row
