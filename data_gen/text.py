"""Batches of numbers and of annotated text: the currency between tasks, formats and tokenizers.

A task draws a `Problem` whose operands and answers are `Number` batches (digit arrays,
least-significant digit first). A format writes a problem as a `Text` batch: right-padded
ASCII characters, each annotated with what a tokenizer and a position-ID rule need to know
(which number a character belongs to, the significance of a digit, whether it is part of
the answer). Everything is vectorized over the batch: there is no per-example Python loop.

Building texts fast. A format describes a text as a list of `Piece`s (a literal, a number,
a list of numbers, ...) and `assemble` writes them all at once. Inside a piece every
character is a packed 8-byte record (`RECORD`: character, target flag, significance,
number index) held as one int64 (`record`: built arithmetically, so the packing does not
depend on the machine's byte order), and placing a piece is a single scatter of int64
values instead of one scatter per annotation. A piece holds `items` (one for a literal or a number,
K for a list of K numbers). The positions of an item's records within the item depend only
on a few integers (its length, whether a separator follows), so they are rows of a small
table shared by the items: a record at position DROP is not written. That one rule
expresses ragged rows, numbers written most-significant digit first (position = length - 1
- significance), separators between list elements and absent list elements (length 0).
`assemble` gathers the table rows of all items into one reused buffer, adds the item
offsets and scatters: no per-character broadcast comparisons and few large temporaries.

The fast path, for the arithmetic, list, repeat and digit-string layouts (everything but the
scratchpads): each part of the text is a `Slot`, a fixed number of columns per row in written
order with a mask of the columns a row writes, and `assemble_slots` works in uint8: the
leading slots that every row writes in full are copied as columns, the others are packed row
by row with one boolean selection. Annotations are per column and are packed the same way only
when first read (`Annotated`): training with one token per character on sequential positions
never builds them.
"""

import dataclasses
import itertools
from typing import Callable, Sequence

import numpy as np

PAD_CHAR = 0  # chars_BxT value beyond a row's length

RECORD = np.dtype([("char", "u1"), ("target", "?"), ("sig", "<i2"), ("num", "<i2"),
                   ("spare", "<i2")])
assert RECORD.itemsize == 8


def record(char: int | str, *, sig: int = -1, num: int = -1, target: bool = False) -> int:
  """One packed character record: RECORD's 8 bytes read as a little-endian int64."""
  code = ord(char) if isinstance(char, str) else char
  return code | int(target) << 8 | (sig & 0xFFFF) << 16 | (num & 0xFFFF) << 32


PAD_RECORD = record(PAD_CHAR)
DROP = 1 << 40  # the position of a record that is not written
SIG_UNIT = 1 << 16  # adding k * SIG_UNIT to a record with sig 0 sets sig to k (char: + k)
NUM_UNIT = 1 << 32  # likewise for num


@dataclasses.dataclass(frozen=True)
class Number:
  """A batch of non-negative integers as digits.

  digits_BxW: int8, least-significant digit first; zero beyond each row's length.
  length_B: int32, digits in each number (>= 1; the number 0 has length 1). No leading
    zeros: digits_BxW[b, length_B[b] - 1] != 0 unless the number is 0. (Exception: the
    operand and answer of a "digit_string" problem are digit strings, which may begin
    with zeros; see `Problem`.)
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

  @classmethod
  def from_array(cls, values_B: np.ndarray) -> "Number":
    """Vectorized conversion of an integer array (values in [0, 2**63)) of any shape [B]."""
    values_B = np.asarray(values_B, np.int64)
    if values_B.size and values_B.min() < 0:
      raise ValueError(f"numbers must be non-negative, got {int(values_B.min())}")
    top = int(values_B.max()) if values_B.size else 0
    width = len(str(top))
    powers_W = 10 ** np.arange(width, dtype=np.int64)
    digits = ((values_B[:, None] // powers_W) % 10).astype(np.int8)
    length = np.maximum(1, (values_B[:, None] >= powers_W).sum(axis=1)).astype(np.int32)
    return cls(digits, length)

  def to_ints(self) -> list[int]:
    """The numbers as Python ints (for tests)."""
    return [int("".join(str(d) for d in row[:n][::-1])) for row, n in zip(self.digits_BxW, self.length_B)]

  def to_strs(self) -> list[str]:
    """The numbers as digit strings, most significant digit first (for tests)."""
    return ["".join(str(d) for d in row[:n][::-1]) for row, n in zip(self.digits_BxW, self.length_B)]

  def take(self, rows_N: np.ndarray) -> "Number":
    """The rows `rows_N` (int [N]) of the batch."""
    return Number(self.digits_BxW[rows_N], self.length_B[rows_N])


LAYOUTS = ("arithmetic", "list", "digit_string", "repeat")


@dataclasses.dataclass(frozen=True)
class Problem:
  """A batch of problems of one task.

  operands: the inputs, each a `Number` batch of the same batch size.
  answers: the outputs (one number for addition; several for sorting or counting).
  op: the operator character the plain format writes between operands ("+", "*"); for the
    "repeat" layout the symbol written n times.
  layout: how formats write the problem:
    "arithmetic"    `128+367=495`: operands joined by `op`, "=", the one answer.
    "list"          `S 5 3 9 1 > 1 3 5 9 E`: `prefix`, the operands, optionally
                    ` ? query`, then ` > `, the answers and ` E`.
    "digit_string"  `10204112 -> 00111224`: one operand and one answer that are digit
                    strings (leading zeros allowed).
    "repeat"        `R a a a > 1 2 3 E`: operand 0 is n, written as n copies of `op`.
  prefix: the task-prefix letter of "list" and "repeat" problems ("" otherwise).
  query: the queried element of hint tasks (`H 5 3 9 1 ? 3 > 5 E`), or None.
  operand_count_B, answer_count_B: int32 [B] for lists whose length varies by row: row b
    uses only its first operand_count_B[b] operands and answer_count_B[b] answers (the
    others hold arbitrary valid numbers). None means every row uses all of them.
  """

  operands: tuple[Number, ...]
  answers: tuple[Number, ...]
  op: str
  layout: str = "arithmetic"
  prefix: str = ""
  query: Number | None = None
  operand_count_B: np.ndarray | None = None
  answer_count_B: np.ndarray | None = None

  def __post_init__(self):
    if self.layout not in LAYOUTS:
      raise ValueError(f"layout {self.layout!r} unknown; choose one of: {', '.join(LAYOUTS)}")

  @property
  def batch(self) -> int:
    return (self.operands + self.answers)[0].batch

  def take(self, rows_N: np.ndarray) -> "Problem":
    """The rows `rows_N` (int [N]) of the batch, every field included."""
    take = lambda n: n.take(rows_N)
    count = lambda c: None if c is None else c[rows_N]
    return dataclasses.replace(
        self, operands=tuple(map(take, self.operands)), answers=tuple(map(take, self.answers)),
        query=None if self.query is None else take(self.query),
        operand_count_B=count(self.operand_count_B), answer_count_B=count(self.answer_count_B))


class Annotated:
  """Frozen arrays whose `sig_BxT` and `num_BxT` may be computed when first read (the base of
  `Text` and `tokenizers.TokenBatch`).

  A batch made with `deferred` holds a function that returns (sig_BxT, num_BxT); it is called
  once, on the first read of either. Training on sequential positions with one token per
  character never reads them, so the formats' fast path (`assemble_slots`) and the framing of
  token batches defer them.
  """

  __slots__ = ()

  def _store(self, annotations, **fields) -> None:
    for name, value in fields.items():
      object.__setattr__(self, name, value)
    object.__setattr__(self, "_annotations", annotations)

  @classmethod
  def deferred(cls, annotate: Callable[[], tuple[np.ndarray, np.ndarray]], **fields):
    """A batch of `fields` (every field but sig_BxT and num_BxT) whose (sig_BxT, num_BxT)
    are annotate()."""
    out = cls.__new__(cls)
    out._store(annotate, **fields)
    return out

  @property
  def sig_BxT(self) -> np.ndarray:
    return self._resolved()[0]

  @property
  def num_BxT(self) -> np.ndarray:
    return self._resolved()[1]

  def _resolved(self) -> tuple[np.ndarray, np.ndarray]:
    if callable(self._annotations):
      object.__setattr__(self, "_annotations", self._annotations())
    return self._annotations

  def __setattr__(self, name, value):
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


class Text(Annotated):
  """A batch of annotated ASCII strings, right-padded with PAD_CHAR (frozen).

  chars_BxT: uint8 character codes.
  sig_BxT: int16 significance of a digit within its number (0 = units digit, also for
    zero-padding digits, which continue the count); -1 for non-digit characters.
  num_BxT: int16 index of the number the character belongs to, in the order the format
    writes numbers (operands, then answers); -1 for characters outside numbers.
  target_BxT: bool, True on the characters the model must produce (the answer part).
  length_B: int32 characters in each row.
  sig_BxT and num_BxT may be computed when first read (see `Annotated`).
  """

  __slots__ = ("chars_BxT", "target_BxT", "length_B", "_annotations")

  def __init__(self, chars_BxT: np.ndarray, sig_BxT: np.ndarray, num_BxT: np.ndarray, target_BxT: np.ndarray,
               length_B: np.ndarray):
    self._store((sig_BxT, num_BxT), chars_BxT=chars_BxT, target_BxT=target_BxT, length_B=length_B)

  @property
  def batch(self) -> int:
    return self.chars_BxT.shape[0]

  def strings(self) -> list[str]:
    """Each row decoded to a Python string."""
    return [row[:n].tobytes().decode("ascii") for row, n in zip(self.chars_BxT, self.length_B)]


@dataclasses.dataclass(frozen=True)
class Piece:
  """Part of a text in packed form (see the module docstring); `assemble` writes pieces.

  records: int64 [B or 1, N, R] packed records (see `record`) of N items.
  table: int64 [M, R] rows of record positions inside an item (DROP: not written).
  row_BxN: int [B or 1, N] the table row of each item.
  length_BxN: int [B or 1, N] characters of each item: the records written to an item
    have exactly the positions 0 .. length - 1. Items are written one after another.
  """

  records: np.ndarray
  table: np.ndarray
  row_BxN: np.ndarray
  length_BxN: np.ndarray


def text_records(text: Text) -> np.ndarray:
  """The characters of `text` as packed records: int64 [B, T]."""
  packed = np.empty(text.chars_BxT.shape, RECORD)
  packed["char"], packed["target"] = text.chars_BxT, text.target_BxT
  packed["sig"], packed["num"], packed["spare"] = text.sig_BxT, text.num_BxT, 0
  return packed.view("<i8").astype(np.int64)


def records_text(records_BxT: np.ndarray, length_B: np.ndarray) -> Text:
  """Unpacks records (int64 [B, T], PAD_RECORD beyond each row's length) into a Text.

  Each field is a strided little-endian view of the records copied out once (the fields of
  RECORD sit at byte offsets 0, 1, 2 and 4); sig and num when first read.
  """
  packed = np.ascontiguousarray(records_BxT, "<i8")
  as_bytes, as_int16 = packed.view("u1"), packed.view("<i2")
  return Text.deferred(lambda: (as_int16[..., 1::4].astype(np.int16), as_int16[..., 2::4].astype(np.int16)),
                       chars_BxT=np.ascontiguousarray(as_bytes[..., 0::8]),
                       target_BxT=np.ascontiguousarray(as_bytes[..., 1::8]).view(bool),
                       length_B=length_B.astype(np.int32))


def _position_table(max_length: int, width: int, *, reverse: bool) -> np.ndarray:
  """int64 [max_length + 1, width]: row L holds the position of column j (significance j) of
  a number of L digits written least-significant first (reverse) or most-significant
  first; DROP beyond the length."""
  lengths = np.arange(max_length + 1, dtype=np.int64)[:, None]
  col = np.arange(width, dtype=np.int64)
  return np.where(col < lengths, col if reverse else lengths - 1 - col, DROP)


def literal_piece(s: str, *, target: bool = False) -> Piece:
  """The same literal string in every row (its digits are not part of any number)."""
  records = np.frombuffer(s.encode("ascii"), np.uint8).astype(np.int64) + record(PAD_CHAR, target=target)
  return Piece(records.reshape(1, 1, len(s)), np.arange(len(s), dtype=np.int64)[None], np.zeros((1, 1), np.int64),
               np.full((1, 1), len(s)))


def when(piece: Piece, active_B: np.ndarray) -> Piece:
  """The piece in the rows where active_B (bool [B]) holds, nothing elsewhere."""
  table = np.concatenate([piece.table, np.full((1, piece.table.shape[1]), DROP)])  # its last row: nothing
  active_Bx1 = active_B[:, None]
  return Piece(piece.records, table, np.where(active_Bx1, piece.row_BxN, len(piece.table)),
               piece.length_BxN * active_Bx1)


def digits_piece(digits_BxNxW: np.ndarray, length_BxN: np.ndarray, *, index_BxN=None,
                 reverse: bool = False, target: bool = False, between: str = "",
                 hints: str = "", after: str = "", after_length_BxN=None) -> Piece:
  """Numbers as digit characters: the workhorse behind number, list and scratchpad pieces.

  Args:
    digits_BxNxW: int, N numbers per row, least-significant digit first.
    length_BxN: int, digits written per number (more than a number's length writes zero
      padding; 0 writes nothing).
    index_BxN: int, the num index of each number (sig and num annotate its digits), or
      None for digits outside numbers (sig = num = -1).
    reverse: write the least-significant digit first.
    target: mark the characters as part of the answer.
    between: a character written between consecutive digits (`4 9 5`, `1,2,8`).
    hints: index-hint letters: hints[s] is written before the digit of significance s (one
      letter each, so numbers of at most len(hints) digits; `list_slot` writes the longer
      hints of `index_hint` beyond that).
    after: a character written after the number (a list separator), for the numbers where
      after_length_BxN (int, 0 or 1; default 1) says so.
  Returns:
    A Piece of N items.
  """
  batch, n, w = digits_BxNxW.shape
  length_BxN = np.asarray(length_BxN, np.int64)  # positions are int64 (DROP needs 41 bits)
  if index_BxN is None:
    base_W = np.full(w, record("0", target=target))
  else:
    base_W = record("0", sig=0, num=0, target=target) + np.arange(w, dtype=np.int64) * SIG_UNIT
  index_BxN = None if index_BxN is None else np.asarray(index_BxN, np.int64)
  if index_BxN is not None and index_BxN.size == 1:  # one index for all: fold it into base_W
    base_W = base_W + int(index_BxN.flat[0]) * NUM_UNIT
  records = digits_BxNxW.astype(np.int64)
  records += base_W
  if index_BxN is not None and index_BxN.size > 1:
    records += index_BxN[..., None] * NUM_UNIT
  max_length = int(length_BxN.max(initial=0))
  table = _position_table(max_length, w, reverse=reverse)  # row = length
  units = [records]
  if hints:
    if max_length > len(hints):
      raise ValueError(f"index hints cover numbers of at most {len(hints)} digits; got {max_length} digits")
    letters = hints[:w].ljust(w, "?")  # columns beyond every length are never written
    units.insert(0, np.broadcast_to(np.array([record(h, target=target) for h in letters]), records.shape))
  if between:
    units.append(np.full(records.shape, record(between, target=target)))
  stride = len(units)
  total_L = np.maximum(np.arange(max_length + 1) * stride - (1 if between else 0), 0)
  if stride > 1:
    records = np.stack(units, axis=-1).reshape(batch, n, w * stride)
    table = (table[..., None] * stride + np.arange(stride)).reshape(max_length + 1, w * stride)
    table = np.where(table < total_L[:, None], table, DROP)
  row_BxN, total_BxN = length_BxN, total_L[length_BxN]
  if after:  # rows L (no separator) and max_length + 1 + L (separator at position total)
    after_BxN = np.ones_like(length_BxN) if after_length_BxN is None else np.asarray(after_length_BxN)
    records = np.concatenate([records, np.full((batch, n, 1), record(after, target=target))], -1)
    table = np.concatenate([np.concatenate([table, np.full((max_length + 1, 1), DROP)], -1),
                            np.concatenate([table, total_L[:, None]], -1)])
    row_BxN = length_BxN + (max_length + 1) * (after_BxN > 0)
    total_BxN = total_BxN + after_BxN
  return Piece(records, table, row_BxN, total_BxN)


def number_piece(number: Number, index: int | np.ndarray | None, *, reverse: bool = False,
                 width: int | np.ndarray | None = None, target: bool = False, hints: str = "",
                 between: str = "") -> Piece:
  """One number per row as a Piece of one item (see `number_text` and `digits_piece`).

  width: zero-pad to this many digits: an int or int [B] (must be >= every length).
  """
  length = number.length_B
  digits = number.digits_BxW
  if width is not None:
    width_B = np.broadcast_to(np.asarray(width), length.shape)
    if np.any(length > width_B):
      bad = int(np.argmax(length > width_B))
      raise ValueError(f"padding width {int(width_B[bad])} is below an operand length {int(length[bad])}")
    length = width_B
    extra = int(width_B.max()) - digits.shape[1]
    if extra > 0:
      digits = np.pad(digits, ((0, 0), (0, extra)))
  index_Bx1 = None if index is None else np.asarray(index).reshape(-1, 1)
  return digits_piece(digits[:, None, :], length[:, None], index_BxN=index_Bx1, reverse=reverse,
                      target=target, hints=hints, between=between)


def text_piece(text: Text) -> Piece:
  """A Text as a Piece of one item per row."""
  t = text.chars_BxT.shape[1]
  return Piece(text_records(text)[:, None, :], _position_table(t, t, reverse=True), text.length_B[:, None],
               text.length_B[:, None])


def assemble(pieces: Sequence[Piece]) -> Text:
  """Writes the pieces one after another in every row: one int64 scatter per piece.

  Returns:
    The Text [B, T] with T = the longest row (at least 1).
  """
  if not pieces:
    raise ValueError("assemble needs at least one piece")
  batch = max(max(p.records.shape[0], p.length_BxN.shape[0]) for p in pieces)
  starts = []  # per piece: int64 [B, N] start of each item within its row
  total_B = np.zeros(batch, np.int64)
  for piece in pieces:
    length_BxN = piece.length_BxN
    if length_BxN.shape[1] > 1:
      ends = np.cumsum(length_BxN, axis=1)
      starts.append(total_B[:, None] + ends - length_BxN)
      total_B = total_B + ends[:, -1]
    else:
      starts.append(total_B[:, None])
      total_B = total_B + length_BxN[:, 0]
  t = max(int(total_B.max()), 1)
  dump = batch * t  # dropped records land in this last slot
  out = np.full(dump + 1, PAD_RECORD, np.int64)
  row_base_B = np.arange(0, dump, t, dtype=np.int64)
  buffer = np.empty(max(batch * s.shape[1] * p.table.shape[1] for p, s in zip(pieces, starts)), np.int64)
  for piece, start_BxN in zip(pieces, starts):
    n, r = start_BxN.shape[1], piece.table.shape[1]
    dest = buffer[: batch * n * r].reshape(batch, n, r)
    np.take(piece.table, np.broadcast_to(piece.row_BxN, (batch, n)), axis=0, out=dest, mode="clip")
    dest += (start_BxN + row_base_B[:, None])[..., None]
    out[np.minimum(dest, dump, out=dest)] = piece.records
  return records_text(out[:dump].reshape(batch, t), total_B)


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


def number_text(number: Number, index: int | np.ndarray | None, *, reverse: bool = False,
                width: int | None = None, target: bool = False) -> Text:
  """Writes each number as digit characters.

  Args:
    number: the batch to write.
    index: the value written into num_BxT for these characters (an int, or int [B] for a
      per-row index); None writes digits outside numbers (sig = num = -1).
    reverse: write the least-significant digit first.
    width: zero-pad every number to this many digits (must be >= every length).
    target: mark the characters as part of the answer.
  """
  return assemble([number_piece(number, index, reverse=reverse, width=width, target=target)])


def concat(parts: Sequence[Text]) -> Text:
  """Concatenates texts row by row (ragged: each row's parts are joined without gaps)."""
  if not parts:
    raise ValueError("concat needs at least one part")
  return assemble([text_piece(p) for p in parts])


# ---- Slots: the fast path --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Slot:
  """A piece of text as a fixed number of columns per row in written order, for `assemble_slots`.

  chars_BxW: uint8 [B or 1, W], the characters in written order; row b writes its valid
    columns one after another.
  valid_BxW: bool [B or 1, W], the columns row b writes, or None: every column.
  length_B: int [B] or int, the number of valid columns of each row.
  sig_W: int16 [W], significance of each column's digit (-1: not a digit of a number).
  num_W: int16 [W], number index of each column's digit (-1 outside numbers), to which
    num_B (int [B], when given) adds a per-row offset.
  target: whether the piece is part of the answer.
  """

  chars_BxW: np.ndarray
  valid_BxW: np.ndarray | None
  length_B: np.ndarray | int
  sig_W: np.ndarray
  num_W: np.ndarray
  num_B: np.ndarray | None = None
  target: bool = False


def _no_digits(width: int) -> np.ndarray:
  return np.full(width, -1, np.int16)


def literal_slot(s: str, *, target: bool = False) -> Slot:
  """The same literal string in every row (its digits are not part of any number)."""
  none = _no_digits(len(s))
  return Slot(np.frombuffer(s.encode("ascii"), np.uint8)[None], None, len(s), none, none, target=target)


def choice_slot(options: Sequence[str], choice_B: np.ndarray, *, target: bool = False) -> Slot:
  """Row b gets the literal options[choice_B[b]] (int [B] indices into `options`)."""
  width = max(1, max(map(len, options)))
  table = np.zeros((len(options), width), np.uint8)
  for i, s in enumerate(options):
    table[i, :len(s)] = np.frombuffer(s.encode("ascii"), np.uint8)
  length_B = np.array([len(s) for s in options])[choice_B]
  return Slot(table[choice_B], prefix_mask(length_B, width), length_B, _no_digits(width), _no_digits(width),
              target=target)


def repeat_slot(s: str, count_B: np.ndarray, *, target: bool = False) -> Slot:
  """Row b gets the literal `s` repeated count_B[b] times."""
  length_B = len(s) * np.asarray(count_B)
  width = max(int(length_B.max()), 1)
  chars = np.resize(np.frombuffer(s.encode("ascii"), np.uint8), width)[None]
  return Slot(chars, prefix_mask(length_B, width), length_B, _no_digits(width), _no_digits(width), target=target)


def number_slot(number: Number, index: int | np.ndarray, *, reverse: bool = False,
                width: int | np.ndarray | None = None, hints: str = "", target: bool = False) -> Slot:
  """One number per row as digit characters (what `number_piece` writes, as a Slot).

  index: the number index, an int or int [B].
  width: zero-pad to this many digits, an int or int [B] (must be >= every length).
  """
  length_B, digits = number.length_B, number.digits_BxW
  if width is not None:
    width_B = np.broadcast_to(np.asarray(width), length_B.shape)
    if np.any(length_B > width_B):
      bad = int(np.argmax(length_B > width_B))
      raise ValueError(f"padding width {int(width_B[bad])} is below an operand length {int(length_B[bad])}")
    length_B = width_B
    extra = int(width_B.max()) - digits.shape[1]
    if extra > 0:
      digits = np.pad(digits, ((0, 0), (0, extra)))
  return list_slot(digits[:, None, :], length_B[:, None], index, reverse=reverse, hints=hints, target=target)


def index_hint(alphabet: str, s: int) -> str:
  """The index hint of significance s: s + 1 as a bijective base-len(alphabet) numeral over the
  alphabet, most significant letter first. With a..z A..Z: a, b, ..., Z for s = 0..51, then
  aa, ab, ..., aZ, ba, ... (two letters up to s = 52 + 52**2 - 1, and so on)."""
  n, out = s + 1, ""
  while n:
    n, r = divmod(n - 1, len(alphabet))
    out = alphabet[r] + out
  return out


def list_slot(digits_BxKxW: np.ndarray, length_BxK: np.ndarray, first_index: int | np.ndarray, *,
              reverse: bool = False, hints: str = "", target: bool = False, after: str = "",
              after_BxK: np.ndarray | None = None) -> Slot:
  """K numbers per row as digit characters (what `digits_piece` writes, as a Slot).

  Number k of row b has length_BxK[b, k] digits (0: not written) and index first_index + k
  (first_index an int or an int array [B]). Digit column c of number k holds significance c
  (reverse: least-significant digit first, valid columns first) or W-1-c (valid columns
  last); with hints (an alphabet), `index_hint(hints, s)` comes before the digit of
  significance s: one letter up to len(hints) digits, then two, ... (any length). `after`
  follows number k where after_BxK[b, k] (bool; default: everywhere).
  """
  batch, k, w = digits_BxKxW.shape
  items = (lambda x: x[:, 0]) if k == 1 else (lambda x: x.reshape(batch, -1))  # [B, K, R] -> [B, K * R]
  sig_W = np.arange(w, dtype=np.int16) if reverse else np.arange(w - 1, -1, -1, dtype=np.int16)
  chars = (digits_BxKxW if reverse else digits_BxKxW[..., ::-1]).view(np.uint8) + np.uint8(ord("0"))
  full = not after and int(length_BxK.min()) == w
  valid = None
  if not full:
    valid = prefix_mask(length_BxK.reshape(-1), w).reshape(batch, k, w)[..., ::1 if reverse else -1]
  written_BxK = length_BxK
  if hints:  # hint columns a significance's hint does not fill, or beyond every length, are never written: '?'
    names = [index_hint(hints, s) for s in range(w)]
    h = len(names[-1])  # the longest hint of the columns
    used_Wxh = np.arange(h) >= h - np.array([len(n) for n in names])[:, None]
    letters = np.frombuffer("".join(n.rjust(h, "?") for n in names).encode("ascii"), np.uint8).reshape(w, h)
    chars = np.concatenate([np.broadcast_to(letters[sig_W], (batch, k, w, h)), chars[..., None]],
                           axis=-1).reshape(batch, k, w * (h + 1))
    columns = np.concatenate([used_Wxh[sig_W], np.ones((w, 1), bool)], axis=-1).reshape(-1)
    sig_W = np.concatenate([np.full((w, h), -1, np.int16), sig_W[:, None]], axis=-1).reshape(-1)
    if not columns.all():
      full = False
    if not full:
      valid = columns & (np.ones((batch, k, 1), bool) if valid is None else np.repeat(valid, h + 1, axis=-1))
    hint_chars_L = np.concatenate([[0], np.cumsum([len(n) for n in names])])  # of a number of L digits
    written_BxK = length_BxK + hint_chars_L[length_BxK]
  if full:
    length_B = chars.shape[-1] * k
  else:
    length_B = written_BxK[:, 0] if k == 1 else written_BxK.sum(axis=1)
  if after:
    after_BxK = np.ones((batch, k), bool) if after_BxK is None else np.asarray(after_BxK, bool)
    chars = np.concatenate([chars, np.full((batch, k, 1), ord(after), np.uint8)], axis=-1)
    valid = np.concatenate([valid, after_BxK[..., None]], axis=-1)
    sig_W = np.append(sig_W, np.int16(-1))
    length_B = length_B + after_BxK.sum(axis=1)
  per_row = isinstance(first_index, np.ndarray)
  index_Kx1 = np.int16(0 if per_row else first_index) + (np.arange(k, dtype=np.int16)[:, None] if k > 1 else 0)
  num_W = np.where(sig_W >= 0, index_Kx1, np.int16(-1)).reshape(-1)
  return Slot(items(chars), None if full else items(valid), length_B, sig_W if k == 1 else np.tile(sig_W, k),
              num_W, first_index if per_row else None, target)


_LOWER = np.tri(257, 256, -1, bool)  # a constant: row L is True in its first L columns
_LOWER.flags.writeable = False


def prefix_mask(length_B: np.ndarray, width: int) -> np.ndarray:
  """bool [B, width]: True in the first length_B[b] columns of row b (for a batch larger than
  the width, rows of a triangular table: cheaper than comparing row by row)."""
  if width < len(length_B) and width < _LOWER.shape[1]:
    return _LOWER[:width + 1, :width][length_B]
  return np.arange(width) < length_B[:, None]


def prefix_rows(length_B: np.ndarray, row_W: np.ndarray) -> np.ndarray:
  """[B, W] of row_W's dtype: row b holds row_W[:length_B[b]], then zeros (for a batch larger
  than W, rows of a [W + 1, W] table: cheaper than comparing row by row)."""
  width = len(row_W)
  if width < len(length_B):
    return (np.tri(width + 1, width, -1, row_W.dtype) * row_W)[length_B]
  return np.where(np.arange(width) < length_B[:, None], row_W, row_W.dtype.type(0))


def assemble_slots(slots: Sequence[Slot]) -> Text:
  """Writes the slots one after another in every row (the fast path: uint8 throughout).

  The leading slots that every row writes in full are copied as columns; the others are laid
  side by side, with enough padding columns to give every row exactly T valid columns, and
  one boolean selection packs each row. The annotations, computed when first read, are each
  column's, packed by the same selection. The targets must be a suffix of the slots.

  Returns:
    The Text [B, T] with T = the longest row (at least 1).
  """
  batch = max(s.chars_BxW.shape[0] if s.valid_BxW is None else s.valid_BxW.shape[0] for s in slots)
  starts, start = [], 0  # each an int while every row agrees
  for s in slots:
    starts.append(start)
    start = start + s.length_B
  total_B = np.broadcast_to(start, (batch,)).astype(np.int32)
  t = max(int(total_B.max()), 1)
  chars_BxT = np.empty((batch, t), np.uint8)
  fixed, p = 0, 0  # leading slots written in full by every row, and their columns
  while fixed < len(slots) and slots[fixed].valid_BxW is None:
    w = slots[fixed].chars_BxW.shape[1]
    chars_BxT[:, p:p + w] = slots[fixed].chars_BxW
    fixed, p = fixed + 1, p + w
  rest = slots[fixed:]
  widths = [s.chars_BxW.shape[1] for s in rest]
  columns = sum(widths)
  pad = t - int(total_B.min())  # padding columns: row b needs t - total_B[b]
  valid = np.empty((batch, columns + pad), bool)
  if rest:
    packed = np.empty((batch, columns + pad), np.uint8)
    for s, a, w in zip(rest, itertools.accumulate([0] + widths), widths):
      packed[:, a:a + w] = s.chars_BxW
      valid[:, a:a + w] = True if s.valid_BxW is None else s.valid_BxW
    packed[:, columns:] = PAD_CHAR
    valid[:, columns:] = prefix_mask(t - total_B, pad)
    chars_BxT[:, p:] = packed[valid].reshape(batch, t - p)
  first_target = next((start for s, start in zip(slots, starts) if s.target), t)
  target_BxT = prefix_mask(total_B, t)
  target_BxT &= (np.arange(t) >= first_target) if isinstance(first_target, int) else ~prefix_mask(first_target, t)
  return Text.deferred(lambda: _slot_annotations(slots, p, valid, t), chars_BxT=chars_BxT, target_BxT=target_BxT,
                       length_B=total_B)


def _slot_annotations(slots: Sequence[Slot], p: int, valid_BxR: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
  """(sig, num) int16 [B, T] of `assemble_slots`: each column's annotations, the first p
  columns as they are, the others packed by the characters' selection valid_BxR."""
  batch, r = valid_BxR.shape
  annotations = np.full((2, batch, p + r), -1, np.int16)  # sig, num of every column; padding: -1
  a = 0
  for s in slots:
    w = s.chars_BxW.shape[1]
    annotations[0, :, a:a + w] = s.sig_W
    annotations[1, :, a:a + w] = s.num_W
    if s.num_B is not None:
      annotations[1, :, a:a + w] += (s.num_W >= 0) * s.num_B[:, None].astype(np.int16)
    a += w
  out = np.empty((2, batch, t), np.int16)
  out[:, :, :p] = annotations[:, :, :p]
  out[:, :, p:] = annotations[:, :, p:][:, valid_BxR].reshape(2, batch, t - p)
  return out[0], out[1]
