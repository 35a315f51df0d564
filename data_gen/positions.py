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
  number: the digit tokens of a row with the same num >= 0 (one number as written; hint
    letters, spaces and separators between its digits are not part of it).
  place: the dense rank of a digit token's sig among the sig values present in its row
    (0 = the units digit). For one-digit tokens it equals sig; for r2l chunks of k digits
    of numbers written most-significant digit first it is sig // k; in general, tokens whose
    lowest digits have equal significance share a place, and places are consecutive.

Random offsets. The rules that shift IDs by a random amount in training (sequential's and
abacus's offset k, coupling's start s) take `offset_per`: "batch" draws one value for the
whole call (one batch shard of one mixture source), "example" one per row. One value per
batch is McLeish et al.'s choice at their large batches; at a small batch it leaves most
steps without small offsets, so a test at k = 0 depends on the last few draws.

Rules:
  sequential  t + k for the t-th token (BOS, when present, is t = 0). k = 0 unless
              max_offset > 0: then in training k ~ U{0..max_offset} (offset_per, default
              "example"), the random shift of Zhu et al.'s TAPE (angles of i + k) and the
              random start of Cho et al.'s absolute-position baseline; at test k =
              test_offset (default 0). An encoding with a table of positions needs it to
              hold max_offset + the longest sequence.
  abacus      McLeish et al.: 0 for non-digit tokens; the j-th digit token (1-based, in
              written order) of each number gets j, counting on across the hint letters and
              spaces a format writes between the digits of one number (these get 0); in
              training an offset k ~ U{0..max_offset} (offset_per, default "batch") is added
              to every nonzero ID (k = 0 at test).
              `3 2 1 + 7 6 5 4 = 0 9 6 4` -> `1 2 3 0 1 2 3 4 0 1 2 3 4`;
              `a3b2c1+a7b6c5d4=` -> `0 1 0 2 0 3 0 0 1 0 2 0 3 0 4 0`.
  coupling    Cho et al.: digit tokens get s + 1 + place, other tokens s, special tokens
              (BOS, EOS, task prefix) 0. s ~ U{1..max_pos - n_places} per example in
              training (n_places = distinct places in the row, the answer length when the
              format pads it; offset_per="batch": one s for the call, bounded by its
              largest n_places), s = 1 at test, so IDs never exceed max_pos (an embedding
              table needs max_pos + 1 rows). The answer must be written least-significant
              digit first or padded to a width set by the operands (`check_format`): an
              answer written most-significant digit first at its own length would give its
              first digit the ID of its top place, telling the model whether a carry
              comes out before it writes the digit. For 123+4567 written `0123+4567=09640`:
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

from data_gen.formats import FormatSpec
from data_gen.registry import Registry
from data_gen.text import prefix_mask, prefix_rows
from data_gen.tokenizers import NUM_SPECIAL, TokenBatch

POSITIONS = Registry("position rule")


def _masked(ids_BxT: np.ndarray, valid_BxT: np.ndarray) -> np.ndarray:
  return np.where(valid_BxT, ids_BxT, 0).astype(np.int32)


OFFSET_PER = ("batch", "example")


def _check_offsets(rule: str, offset_per: str, **values: int) -> None:
  """ValueError for an unknown offset_per or a negative offset option of `rule`."""
  if offset_per not in OFFSET_PER:
    raise ValueError(f"{rule} offset_per {offset_per!r} unknown; choose one of: {', '.join(OFFSET_PER)}")
  for name, value in values.items():
    if value < 0:
      raise ValueError(f"{rule} {name} {value} must be >= 0")


def _draw(rng: np.random.Generator, low: int, high_B: np.ndarray, offset_per: str) -> np.ndarray:
  """int64 [B]: k ~ U{low..high_B[b]}, drawn once for the call (offset_per "batch", bounded
  by the smallest high_B) or once per row ("example")."""
  if offset_per == "batch":
    return np.full(high_B.shape, rng.integers(low, int(high_B.min()) + 1), np.int64)
  return rng.integers(low, high_B + 1)


@POSITIONS.register("sequential")
def sequential(tb: TokenBatch, rng: np.random.Generator, *, train: bool, max_offset: int = 0,
               offset_per: str = "example", test_offset: int = 0) -> np.ndarray:
  """int32 [B, T]: k, k + 1, k + 2, ... along each row; 0 at padding.

  k = 0 by default; with max_offset > 0, k ~ U{0..max_offset} in training, one per row
  (offset_per "example") or one for the call ("batch"); k = test_offset at test. The rng is
  drawn from only when a training offset is drawn.
  """
  _check_offsets("sequential", offset_per, max_offset=max_offset, test_offset=test_offset)
  batch, width = tb.tokens_BxT.shape
  ids = prefix_rows(tb.length_B, np.arange(width, dtype=np.int32))
  if train and max_offset:
    k_B = _draw(rng, 0, np.full(batch, max_offset), offset_per)
  elif not train and test_offset:
    k_B = np.full(batch, test_offset)
  else:
    return ids
  return _masked(ids + k_B[:, None], prefix_mask(tb.length_B, width))


def _digits(tb: TokenBatch) -> np.ndarray:
  """int [N]: flat (row-major) indices of the digit tokens (sig >= 0)."""
  return np.flatnonzero(tb.sig_BxT >= 0)


def _digit_order(tb: TokenBatch, digits_N: np.ndarray) -> np.ndarray:
  """int32 [N]: j for the j-th digit token (1-based, written order) of its number.

  The digit tokens of one number are consecutive in the (row-major) list of digit tokens,
  whatever non-digit tokens (hint letters, spaces, separators) a format writes between them,
  so a number starts where the row or the number index changes from the previous digit token.
  """
  row, num = digits_N // tb.sig_BxT.shape[1], np.take(tb.num_BxT.ravel(), digits_N)
  is_first = np.ones(digits_N.size, bool)
  is_first[1:] = (row[1:] != row[:-1]) | (num[1:] != num[:-1])
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
def abacus(tb: TokenBatch, rng: np.random.Generator, *, train: bool, max_offset: int = 100,
           offset_per: str = "batch") -> np.ndarray:
  """int32 [B, T] Abacus IDs (see module doc); offset k ~ U{0..max_offset} in training, one for
  the call (offset_per "batch") or one per row ("example"); k = 0 at test."""
  _check_offsets("abacus", offset_per, max_offset=max_offset)
  batch, width = tb.tokens_BxT.shape
  offset_B = _draw(rng, 0, np.full(batch, max_offset), offset_per) if train else np.zeros(batch, np.int64)
  digits = _digits(tb)
  ids = np.zeros((batch, width), np.int32)
  ids.ravel()[digits] = _digit_order(tb, digits) + np.take(offset_B, digits // width)
  return ids


def _random_starts(rng: np.random.Generator, needed_B: np.ndarray, max_pos: int, name: str,
                   train: bool, offset_per: str) -> np.ndarray:
  """int [B]: s ~ U{1..max_pos - needed_B} in training (per row, or one for the call bounded
  by the largest needed_B: see `_draw`), 1 at test."""
  if np.any(max_pos - needed_B < 1):
    need = int(needed_B.max()) + 1
    raise ValueError(f"coupling {name}={max_pos} is too small: a row needs IDs up to {need}; "
                     f"set {name} >= {need}")
  if not train:
    return np.ones_like(needed_B)
  return _draw(rng, 1, max_pos - needed_B, offset_per)


def _number_index(tb: TokenBatch) -> np.ndarray:
  """int [B, T]: index of a token's number within its part (prompt or answer), -1 outside."""
  num = tb.num_BxT.astype(np.int64)
  big = np.iinfo(np.int16).max
  first_prompt = np.where((num >= 0) & ~tb.target_BxT, num, big).min(axis=1, keepdims=True)
  first_answer = np.where((num >= 0) & tb.target_BxT, num, big).min(axis=1, keepdims=True)
  return np.where(num >= 0, num - np.where(tb.target_BxT, first_answer, first_prompt), -1)


def check_format(rule: str, format_name: str, spec: FormatSpec) -> None:
  """Raises ValueError when position rule `rule` would give answer slots IDs that depend on the
  answer under the format `spec` (parsed from `format_name`).

  coupling ties an answer digit's ID to its place, so the answer must be written
  least-significant digit first (its j-th digit has place j whatever its length) or padded to
  a width the operands fix (every answer of an evaluation cell then has the same length).
  """
  if rule == "coupling" and not (spec.reverse_answer or spec.pad):
    raise ValueError(
        f"data.positions='coupling' with data.format={format_name!r}: the answer is written "
        "most-significant digit first at its own length, so the ID of its first digit (its "
        "place) would tell the model the answer's length, e.g. whether a carry comes out. Add "
        "'reverse_answer' to data.format (least-significant digit first, as Cho et al. write it) "
        "or 'pad' / 'pad<N>' (the answer zero-padded to a width the operands fix)")


@POSITIONS.register("coupling")
def coupling(tb: TokenBatch, rng: np.random.Generator, *, train: bool, max_pos: int,
             levels: int = 1, max_pos_number: int | None = None,
             offset_per: str = "example") -> np.ndarray:
  """int32 [B, T] (levels=1) or [B, T, 2] (levels=2) position-coupling IDs (see module doc).

  max_pos: largest level-1 ID (the table has max_pos + 1 rows).
  max_pos_number: largest level-2 ID; required when levels == 2.
  offset_per: the training starts s (and s2) drawn per "example" (Cho et al.) or per "batch".
  """
  if levels not in (1, 2):
    raise ValueError(f"coupling levels {levels} unknown; choose one of: 1, 2")
  _check_offsets("coupling", offset_per)
  valid = tb.tokens_BxT >= NUM_SPECIAL  # neither padding nor a special token
  digits = _digits(tb)
  place, n_places = _digit_place(tb, digits)
  s = _random_starts(rng, n_places, max_pos, "max_pos", train, offset_per).astype(np.int32)
  ids = np.where(valid, s[:, None], 0)
  ids.ravel()[digits] = np.take(s, digits // ids.shape[1]) + 1 + place
  if levels == 1:
    return ids
  if max_pos_number is None:
    raise ValueError("coupling levels=2 needs max_pos_number (the largest level-2 ID)")
  index = _number_index(tb)
  s2 = _random_starts(rng, index.max(axis=1, initial=0), max_pos_number, "max_pos_number",
                      train, offset_per)[:, None]
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
