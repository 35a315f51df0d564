"""Tokenizers: a `Text` batch becomes a `TokenBatch` of ids with token-level annotations.

Every tokenizer has a fixed, listed vocabulary `vocab` (a tuple of strings; id = index):

  0 "<pad>", 1 "<bos>", 2 "<eos>", 3..10 "<task:0>".."<task:7>" (NUM_SPECIAL = 11 ids),
  then the 96 characters "\\n" and " ".."~" (printable ASCII) in code order,
  then, for chunk tokenizers with k >= 2, every digit string of length 2..k in numeric
  order ("00".."99", "000".."999", ...; zero-padded strings are distinct tokens; the
  one-digit strings are the characters "0".."9" themselves),
  then, for `comma`, the group separator "<,>".

Names (registry TOKENIZERS):
  char            one token per character.
  chunk{k}_l2r    k = 1..4: each digit run is cut into k-digit chunks from its left end
  chunk{k}_r2l    (as written) or from its right end, as commas would force:
                  8302080 -> 830|208|0 (l2r), 8|302|080 (r2l). Every other character is
                  its own token. chunk1_* equal `char`.
  comma           chunk3_r2l plus a separator token "<,>" between the groups of a run:
                  8302080 -> 8 <,> 302 <,> 080, displayed "8,302,080" (Singh & Strouse:
                  the comma forces right-to-left 3-digit grouping). The separator is a
                  token of its own, distinct from the text character ",", so that decode
                  round-trips; `pieces` displays it as ",".

A digit run is a maximal stretch of consecutive characters with the same `num` index >= 0
(the digits of one number as one format wrote them; `Text` guarantees such characters are
digits). Chunking follows the written order, so for a reversed (LSD-first) number l2r is
the direction aligned with significance. Digits outside numbers (num = -1) are ordinary
one-character tokens with sig = -1.

BOS/EOS and task-prefix tokens are not part of the text: `with_bos_eos(tb, task_B)` adds
them (BOS, optional <task:i>, the text, EOS).
"""

import numpy as np

from data_gen.registry import Registry
from data_gen.text import PAD_CHAR, Annotated, Text

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
NUM_TASKS = 8
TASK_ID0 = 3  # id of "<task:0>"; task i has id TASK_ID0 + i
NUM_SPECIAL = TASK_ID0 + NUM_TASKS
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>") + tuple(f"<task:{i}>" for i in range(NUM_TASKS))
CHARS = ("\n",) + tuple(chr(c) for c in range(32, 127))
SEPARATOR = "<,>"
_SPACE_ID, _NEWLINE_ID = NUM_SPECIAL + CHARS.index(" "), NUM_SPECIAL + CHARS.index("\n")

TOKENIZERS = Registry("tokenizer")


class TokenBatch(Annotated):
  """A batch of token sequences, right-padded with PAD_ID, with token-level annotations (frozen).

  tokens_BxT: int32 token ids (PAD_ID = 0 beyond each row's length).
  sig_BxT: int16 significance of the token's least-significant digit within its number
    (a one-digit token: the digit's significance; a chunk: that of its lowest digit);
    -1 for tokens that are not digits of a number (including separators and specials).
  num_BxT: int16 index of the number the token belongs to (as in `Text.num_BxT`; a comma
    separator carries its number's index); -1 outside numbers.
  target_BxT: bool, True on tokens the model must produce (the answer part, EOS).
  length_B: int32 tokens in each row.
  sig_BxT and num_BxT may be computed when first read (see `text.Annotated`). Arrays may
  share memory with the encoded `Text`; treat them as read-only.
  """

  __slots__ = ("tokens_BxT", "target_BxT", "length_B", "_annotations")

  def __init__(self, tokens_BxT: np.ndarray, sig_BxT: np.ndarray, num_BxT: np.ndarray, target_BxT: np.ndarray,
               length_B: np.ndarray):
    self._store((sig_BxT, num_BxT), tokens_BxT=tokens_BxT, target_BxT=target_BxT, length_B=length_B)

  @property
  def batch(self) -> int:
    return self.tokens_BxT.shape[0]

  @property
  def valid_BxT(self) -> np.ndarray:
    """bool [B, T]: True on the tokens of each row (False on padding)."""
    return np.arange(self.tokens_BxT.shape[1])[None, :] < self.length_B[:, None]


class Tokenizer:
  """Chunks digit runs into k-digit tokens (k = 1: one token per character).

  Attributes: name, chunk (k), direction ("l2r" | "r2l"), commas (bool), vocab (tuple of
  str, id = index), vocab_size, pad_id, bos_id, eos_id. Instances are immutable.
  """

  def __init__(self, name: str, chunk: int, direction: str, commas: bool = False):
    if direction not in ("l2r", "r2l"):
      raise ValueError(f"chunk direction {direction!r} unknown; choose one of: l2r, r2l")
    self.name, self.chunk, self.direction, self.commas = name, chunk, direction, commas
    chunk_strings = tuple(f"{v:0{m}d}" for m in range(2, chunk + 1) for v in range(10**m))
    self.vocab = SPECIAL_TOKENS + CHARS + chunk_strings + ((SEPARATOR,) if commas else ())
    self.vocab_size = len(self.vocab)
    self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID
    self.separator_id = self.vocab_size - 1 if commas else None
    # First id of the chunks of m digits, m = 1..chunk (m = 1: the characters "0".."9").
    self._chunk_base = np.array(
        [0, _SPACE_ID + ord("0") - ord(" ")] + [NUM_SPECIAL + len(CHARS) + sum(10**j for j in range(2, m))
                                                for m in range(2, chunk + 1)], np.int32)
    self._decode_table = np.array(self.vocab[:-1] + ("",) if commas else self.vocab, object)
    self._piece_table = np.array(self.vocab[:-1] + (",",) if commas else self.vocab, object)

  def __repr__(self) -> str:
    return f"Tokenizer({self.name!r}, vocab_size={self.vocab_size})"

  def encode(self, text: Text) -> TokenBatch:
    """Tokenizes a `Text` batch [B, C] into a TokenBatch [B, T] (T <= C, or more with commas).

    Raises ValueError naming a character outside the vocabulary.
    """
    if self.chunk == 1 and not self.commas:
      return self._encode_chars(text)
    return self._encode_chunks(text)

  def encode_framed(self, text: Text, task_B: np.ndarray | int | None = None, *, bucket: int = 1
                    ) -> TokenBatch:
    """`with_bos_eos(self.encode(text), task_B, bucket=bucket)`; one token per character writes
    the ids straight into the framed array."""
    if self.chunk == 1 and not self.commas:
      self._check_padding(text)
      return _frame(self._char_ids(text.chars_BxT), text, task_B, bucket)
    return with_bos_eos(self.encode(text), task_B, bucket=bucket)

  def _char_ids(self, chars: np.ndarray) -> np.ndarray:
    """uint8 ids of characters (uint8, any shape): PAD_ID for PAD_CHAR, else the character's.

    The printable characters have consecutive codes and ids, so one uint8 subtraction maps them;
    PAD_CHAR and newlines (codes below " ") are patched where present.
    """
    ids = chars - np.uint8(ord(" ") - _SPACE_ID)  # uint8 arithmetic: wraps below " "
    unusual = chars - np.uint8(ord(" ")) > np.uint8(ord("~") - ord(" "))
    count = np.count_nonzero(unusual)
    if count and count == chars.size - np.count_nonzero(chars):  # padding only
      ids *= np.logical_not(unusual).view(np.uint8)
    elif count:
      newline, pad = chars == ord("\n"), chars == PAD_CHAR
      bad = unusual & ~newline & ~pad
      if bad.any():
        code = int(chars[bad][0])
        raise ValueError(f"character {chr(code)!r} (code {code}) is not in the vocabulary of "
                         f"tokenizer {self.name!r}: it holds printable ASCII and '\\n'")
      ids[newline], ids[pad] = _NEWLINE_ID, PAD_ID
    return ids

  def _check_padding(self, text: Text) -> None:
    """Rows hold non-NUL characters up to their length and PAD_CHAR (0) beyond it."""
    if np.count_nonzero(text.chars_BxT) != int(text.length_B.sum()):
      raise ValueError(f"tokenizer {self.name!r}: a Text row holds a NUL character (code 0) "
                       "before its length or a non-PAD character after it")

  def _encode_chars(self, text: Text) -> TokenBatch:
    self._check_padding(text)
    tokens = self._char_ids(text.chars_BxT).astype(np.int32)
    return TokenBatch.deferred(lambda: (text.sig_BxT, text.num_BxT), tokens_BxT=tokens, target_BxT=text.target_BxT,
                               length_B=text.length_B)

  def _encode_chunks(self, text: Text) -> TokenBatch:
    """Cuts all runs at once from their flat start indices and lengths (no per-row loop)."""
    batch, width = text.chars_BxT.shape
    k = self.chunk
    self._check_padding(text)
    chars, num_BxW = text.chars_BxT.ravel(), text.num_BxT
    in_num_BxW = num_BxW >= 0
    bad = in_num_BxW & (text.chars_BxT - np.uint8(ord("0")) > 9)  # uint8: wraps below "0"
    if np.any(bad):
      raise ValueError(f"character {chr(text.chars_BxT[bad][0])!r} is marked as part of a "
                       f"number (num >= 0) but is not a digit; tokenizer {self.name!r} chunks "
                       "digits")
    same_next_BxW = np.zeros_like(in_num_BxW)
    same_next_BxW[:, :-1] = in_num_BxW[:, :-1] & (num_BxW[:, :-1] == num_BxW[:, 1:])
    run_start_BxW = in_num_BxW.copy()
    run_start_BxW[:, 1:] &= ~same_next_BxW[:, :-1]
    first = np.flatnonzero(run_start_BxW).astype(np.int32)
    end = np.flatnonzero(in_num_BxW & ~same_next_BxW).astype(np.int32) + 1
    # Chunks tile each run on a grid of step k anchored at its first (l2r) or last (r2l)
    # character: chunk c covers [lo, lo + k) with lo = first - shift + c*k, clipped to the run.
    size = end - first
    count = (size + k - 1) // k
    shift = 0 if self.direction == "l2r" else (k - size % k) % k
    chunk_first = np.repeat(first, count)
    lo = np.arange(count.sum(), dtype=np.int32) * k + np.repeat(
        first - shift - k * (np.cumsum(count, dtype=np.int32) - count), count)
    start = np.maximum(lo, chunk_first)
    chunk_size = np.minimum(lo + k, np.repeat(end, count)) - start
    value = np.zeros(start.shape, np.int32)
    for j in range(k):
      digit = np.take(chars, start + j, mode="clip").astype(np.int32) - ord("0")
      value = np.where(j < chunk_size, value * 10 + digit, value)

    emits = (text.chars_BxT != 0) & ~in_num_BxW
    emits = emits.ravel()
    emits[start] = True
    p = np.flatnonzero(emits)
    is_chunk = np.take(in_num_BxW.ravel(), p)
    ids = self._char_ids(np.take(chars, p)).astype(np.int32)
    ids[is_chunk] = np.take(self._chunk_base, chunk_size) + value
    sig = text.sig_BxT.ravel()
    token_sig = np.full(p.shape, -1, np.int16)
    token_sig[is_chunk] = np.minimum(np.take(sig, start), np.take(sig, start + chunk_size - 1))

    outputs = np.arange(p.size)  # output index of each token, counting every row
    if self.commas:
      separator = np.zeros(p.shape, bool)
      separator[is_chunk] = start > chunk_first
      outputs = np.cumsum(1 + separator) - 1
    bounds = np.searchsorted(p, np.arange(batch + 1) * width)  # each row's tokens in p
    row_start = np.append(outputs, outputs[-1] + 1 if p.size else 0)[bounds]
    length = np.diff(row_start).astype(np.int32)
    out_width = max(int(length.max(initial=0)), 1)
    out_flat = outputs + np.repeat(np.arange(batch) * out_width - row_start[:-1], np.diff(bounds))

    out = TokenBatch(
        tokens_BxT=np.zeros((batch, out_width), np.int32),
        sig_BxT=np.full((batch, out_width), -1, np.int16),
        num_BxT=np.full((batch, out_width), -1, np.int16),
        target_BxT=np.zeros((batch, out_width), bool),
        length_B=length,
    )
    num, target = num_BxW.ravel(), text.target_BxT.ravel()
    out.tokens_BxT.ravel()[out_flat] = ids
    out.sig_BxT.ravel()[out_flat] = token_sig
    out.num_BxT.ravel()[out_flat] = np.take(num, p)
    out.target_BxT.ravel()[out_flat] = np.take(target, p)
    if self.commas:
      sep_flat, sep_p = out_flat[separator] - 1, p[separator]
      out.tokens_BxT.ravel()[sep_flat] = self.separator_id
      out.num_BxT.ravel()[sep_flat] = np.take(num, sep_p)
      out.target_BxT.ravel()[sep_flat] = np.take(target, sep_p)
    return out

  def decode(self, tokens_BxT: np.ndarray, length_B: np.ndarray | None = None) -> list[str]:
    """Token ids [B, T] -> one string per row (specials as "<bos>" etc., separators dropped).

    length_B: int [B], tokens per row; None: every non-pad token counts.
    decode(encode(text).tokens_BxT) == text.strings() for every tokenizer.
    """
    return ["".join(row) for row in self._rows(tokens_BxT, length_B, self._decode_table)]

  def pieces(self, tokens_BxT: np.ndarray, length_B: np.ndarray | None = None) -> list[list[str]]:
    """Each row's tokens [B, T] as display strings (the comma separator shows as ",")."""
    return self._rows(tokens_BxT, length_B, self._piece_table)

  def _rows(self, tokens_BxT, length_B, table: np.ndarray) -> list[list[str]]:
    tokens_BxT = np.asarray(tokens_BxT)
    if tokens_BxT.size and (tokens_BxT.min() < 0 or tokens_BxT.max() >= self.vocab_size):
      raise ValueError(f"token ids must be in [0, {self.vocab_size}) for tokenizer "
                       f"{self.name!r}; got range [{tokens_BxT.min()}, {tokens_BxT.max()}]")
    if length_B is None:
      return [list(table[row[row != PAD_ID]]) for row in tokens_BxT]
    return [list(table[row[:n]]) for row, n in zip(tokens_BxT, np.asarray(length_B))]


def with_bos_eos(tb: TokenBatch, task_B: np.ndarray | int | None = None, *, bucket: int = 1) -> TokenBatch:
  """Frames each row as BOS, [<task:i>,] tokens, EOS.

  task_B: None (no task token), an int, or int [B] task indices in [0, NUM_TASKS).
  bucket: the result has T + 2 (+1 with a task token) columns rounded up to a multiple of
    bucket (the extra ones PAD).
  Returns the framed TokenBatch. BOS/task/EOS have sig = num = -1; EOS is a target (the model
  must produce it), BOS and the task token are not. sig and num are framed when first read.
  """
  return _frame(tb.tokens_BxT, tb, task_B, bucket)


def _frame(tokens_BxT: np.ndarray, annotated: TokenBatch | Text, task_B, bucket: int) -> TokenBatch:
  """`with_bos_eos` of ids tokens_BxT (any integer dtype) annotated like `annotated` (its
  sig_BxT, num_BxT, target_BxT and length_B)."""
  batch, t = tokens_BxT.shape
  off = 1 if task_B is None else 2
  width = -(-(t + off + 1) // bucket) * bucket
  tokens = np.zeros((batch, width), np.int32)
  target = np.zeros((batch, width), bool)
  tokens[:, 0] = BOS_ID
  if task_B is not None:
    task_B = np.broadcast_to(np.asarray(task_B), (batch,))
    if np.any((task_B < 0) | (task_B >= NUM_TASKS)):
      raise ValueError(f"task index {int(task_B[(task_B < 0) | (task_B >= NUM_TASKS)][0])} "
                       f"is outside [0, {NUM_TASKS}): the vocabulary has {NUM_TASKS} task tokens")
    tokens[:, 1] = TASK_ID0 + task_B
  tokens[:, off:off + t] = tokens_BxT
  target[:, off:off + t] = annotated.target_BxT
  eos_B = np.arange(off, batch * width + off, width) + annotated.length_B
  tokens.ravel()[eos_B] = EOS_ID
  target.ravel()[eos_B] = True

  def annotations() -> tuple[np.ndarray, np.ndarray]:
    framed = np.full((2, batch, width), -1, np.int16)  # sig, num
    framed[0, :, off:off + t] = annotated.sig_BxT
    framed[1, :, off:off + t] = annotated.num_BxT
    return framed[0], framed[1]

  return TokenBatch.deferred(annotations, tokens_BxT=tokens, target_BxT=target,
                             length_B=(annotated.length_B + off + 1).astype(np.int32))


def _register(tokenizer: Tokenizer) -> None:
  TOKENIZERS.register(tokenizer.name)(tokenizer)


_register(Tokenizer("char", 1, "l2r"))
for _k in range(1, 5):
  for _direction in ("l2r", "r2l"):
    _register(Tokenizer(f"chunk{_k}_{_direction}", _k, _direction))
_register(Tokenizer("comma", 3, "r2l", commas=True))
