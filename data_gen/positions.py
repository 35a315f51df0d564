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
    it is sig // k; in general, tokens whose lowest digits have equal significance share a
    place and places are consecutive integers.

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
              code), plus s2 ~ U{1..max_pos_number - max_index} (1 at test). A token outside
              numbers takes the level-2 ID of the next number in its row (a separator belongs
              to the number it introduces), or 0 after the last number; specials get 0.
  randomized  Ruoss et al.: the valid tokens of a row get a sorted uniformly random subset
              of {0..L-1} (per example). At test the IDs are randomized too, as the authors
              do, from np.random.default_rng(test_seed) so that evaluation is reproducible.
"""

import numpy as np

from data_gen.registry import Registry
from data_gen.tokenizers import NUM_SPECIAL, TokenBatch

POSITIONS = Registry("position rule")


def _masked(ids_BxT: np.ndarray, valid_BxT: np.ndarray) -> np.ndarray:
  return np.where(valid_BxT, ids_BxT, 0).astype(np.int32)


@POSITIONS.register("sequential")
def sequential(tb: TokenBatch, rng: np.random.Generator, *, train: bool) -> np.ndarray:
  """int32 [B, T]: 0, 1, 2, ... along each row; 0 at padding."""
  del rng, train
  t_BxT = np.broadcast_to(np.arange(tb.tokens_BxT.shape[1]), tb.tokens_BxT.shape)
  return _masked(t_BxT, tb.valid_BxT)


def run_starts(tb: TokenBatch) -> np.ndarray:
  """bool [B, T]: True on the first token of each run (consecutive tokens, same num >= 0)."""
  num = tb.num_BxT
  start = num >= 0
  start[:, 1:] &= num[:, 1:] != num[:, :-1]
  return start


def digit_order(tb: TokenBatch) -> np.ndarray:
  """int32 [B, T]: j for the j-th digit token (1-based, written order) of its run, else 0."""
  digit = tb.sig_BxT >= 0
  count = np.cumsum(digit, axis=1, dtype=np.int32)
  before_run = np.maximum.accumulate(np.where(run_starts(tb), count - digit, 0), axis=1)
  return np.where(digit, count - before_run, 0).astype(np.int32)


def digit_place(tb: TokenBatch) -> tuple[np.ndarray, np.ndarray]:
  """(place int32 [B, T], n_places int32 [B]): dense rank of sig among the row's digit
  tokens (-1 for non-digit tokens), and the number of distinct places in each row."""
  sig = tb.sig_BxT.astype(np.int64)
  batch = sig.shape[0]
  present = np.zeros((batch, int(sig.max(initial=-1)) + 2), bool)
  present[np.arange(batch)[:, None], sig + 1] = True
  rank = np.cumsum(present[:, 1:], axis=1, dtype=np.int32)
  place = np.take_along_axis(rank, np.maximum(sig, 0), axis=1) - 1
  n_places = rank[:, -1] if rank.shape[1] else np.zeros(batch, np.int32)
  return np.where(sig >= 0, place, -1).astype(np.int32), n_places


@POSITIONS.register("abacus")
def abacus(tb: TokenBatch, rng: np.random.Generator, *, train: bool,
           max_offset: int = 100) -> np.ndarray:
  """int32 [B, T] Abacus IDs (see module doc); offset k ~ U{0..max_offset} per batch in training."""
  if max_offset < 0:
    raise ValueError(f"abacus max_offset {max_offset} must be >= 0")
  order = digit_order(tb)
  offset = int(rng.integers(0, max_offset + 1)) if train else 0
  return np.where(order > 0, order + offset, 0).astype(np.int32)


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
  valid = tb.valid_BxT & (tb.tokens_BxT >= NUM_SPECIAL)
  place, n_places = digit_place(tb)
  s = _random_starts(rng, n_places, max_pos, "max_pos", train)[:, None]
  ids = _masked(np.where(place >= 0, s + 1 + place, s), valid)
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
  i = np.arange(width)
  top = L - size_B[:, None] + i  # L-n+i
  valid = i < size_B[:, None]
  draw = rng.integers(0, top + 1)
  order = np.argsort(np.where(valid, draw, L), axis=1, kind="stable")
  ordered = np.take_along_axis(draw, order, axis=1)
  repeat_sorted = np.zeros_like(valid)
  repeat_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
  repeat = np.zeros_like(valid)
  np.put_along_axis(repeat, order, repeat_sorted, axis=1)
  k = draw - (L - size_B[:, None])
  chain = valid & (k >= 0) & (k < i)
  k = np.clip(k, 0, width - 1)
  replaced = repeat & valid
  while True:
    updated = replaced | (chain & np.take_along_axis(replaced, k, axis=1))
    if np.array_equal(updated, replaced):
      break
    replaced = updated
  chosen = np.where(replaced, top, draw)
  return _masked(np.sort(np.where(valid, chosen, L), axis=1), valid)


@POSITIONS.register("randomized")
def randomized(tb: TokenBatch, rng: np.random.Generator, *, train: bool, L: int = 2048,
               test_seed: int = 0) -> np.ndarray:
  """int32 [B, T]: sorted random subsets of {0..L-1} for the valid tokens (see module doc)."""
  longest = int(tb.length_B.max(initial=0))
  if L < longest:
    raise ValueError(f"randomized positions: L={L} is smaller than a sequence of {longest} "
                     f"tokens; set L >= {longest}")
  if not train:
    rng = np.random.default_rng(test_seed)
  return sorted_subsets(rng, tb.length_B.astype(np.int64), tb.tokens_BxT.shape[1], L)
