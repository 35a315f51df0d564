"""Tokenizers: fixed vocabularies, literal chunkings (docs/methods.md#tokenizers), round trips, errors."""

import string

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from data_gen.text import Number, Text, concat, const_text, number_text
from data_gen.tokenizers import (BOS_ID, EOS_ID, NUM_SPECIAL, NUM_TASKS, TOKENIZERS, TokenBatch,
                                 with_bos_eos)

NAMES = ["char", "chunk1_l2r", "chunk1_r2l", "chunk2_l2r", "chunk2_r2l", "chunk3_l2r",
         "chunk3_r2l", "chunk4_l2r", "chunk4_r2l", "comma"]
ALPHABET = string.printable.replace("\t", "").replace("\r", "").replace("\x0b", "").replace(
    "\x0c", "")


def pieces_of(name: str, text: Text) -> list[list[str]]:
  tokenizer = TOKENIZERS.get(name)
  tb = tokenizer.encode(text)
  return tokenizer.pieces(tb.tokens_BxT, tb.length_B)


def test_registry_lists_every_tokenizer():
  assert TOKENIZERS.names() == sorted(NAMES)
  with pytest.raises(ValueError, match="chunk3_r2l"):
    TOKENIZERS.get("chunk5_r2l")


def test_vocabularies_are_fixed_and_listed():
  sizes = {"char": 107, "chunk1_l2r": 107, "chunk2_r2l": 207, "chunk3_l2r": 1207,
           "chunk4_r2l": 11207, "comma": 1208}
  for name, size in sizes.items():
    tokenizer = TOKENIZERS.get(name)
    vocab = tokenizer.vocab
    assert tokenizer.vocab_size == len(vocab) == size
    assert len(set(vocab)) == size
    assert vocab[:4] == ("<pad>", "<bos>", "<eos>", "<task:0>")
    assert vocab[NUM_SPECIAL - 1] == f"<task:{NUM_TASKS - 1}>"
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2)
    assert vocab[NUM_SPECIAL:NUM_SPECIAL + 96] == ("\n",) + tuple(map(chr, range(32, 127)))
  chunk4 = TOKENIZERS.get("chunk4_l2r").vocab
  assert chunk4[107:110] == ("00", "01", "02")
  assert chunk4.index("000") == 207 and chunk4.index("0000") == 1207 and chunk4[-1] == "9999"
  assert TOKENIZERS.get("comma").vocab[-1] == "<,>"


def test_papers_comma_example_chunkings():
  text = number_text(Number.from_ints([8302080]), 0)
  assert pieces_of("chunk3_r2l", text) == [["8", "302", "080"]]
  assert pieces_of("chunk3_l2r", text) == [["830", "208", "0"]]
  assert pieces_of("comma", text) == [["8", ",", "302", ",", "080"]]
  assert "".join(pieces_of("comma", text)[0]) == "8,302,080"
  assert pieces_of("chunk2_r2l", text) == [["8", "30", "20", "80"]]
  assert pieces_of("chunk4_l2r", text) == [["8302", "080"]]
  assert pieces_of("char", text) == [list("8302080")]


def test_chunks_follow_written_order_and_leave_other_characters_alone():
  text = concat([const_text("12+", 2), number_text(Number.from_ints([8302080, 5]), 0, reverse=True),
                 const_text("=", 2, target=True),
                 number_text(Number.from_ints([1234, 99999]), 1, target=True)])
  assert text.strings() == ["12+0802038=1234", "12+5=99999"]
  assert pieces_of("chunk3_l2r", text) == [["1", "2", "+", "080", "203", "8", "=", "123", "4"],
                                           ["1", "2", "+", "5", "=", "999", "99"]]
  tb = TOKENIZERS.get("chunk3_l2r").encode(text)
  np.testing.assert_array_equal(tb.sig_BxT[0, :9], [-1, -1, -1, 0, 3, 6, -1, 1, 0])
  np.testing.assert_array_equal(tb.num_BxT[0, :9], [-1, -1, -1, 0, 0, 0, -1, 1, 1])
  np.testing.assert_array_equal(tb.target_BxT[0, :9], [0, 0, 0, 0, 0, 0, 1, 1, 1])
  np.testing.assert_array_equal(tb.length_B, [9, 7])
  np.testing.assert_array_equal(tb.tokens_BxT[1, 7:], [0, 0])


def reference_tokens(name: str, text: Text) -> list[tuple[list[int], list[int], list[int], list[bool]]]:
  """Per-example Python tokenization: (ids, sig, num, target) for each row."""
  tokenizer = TOKENIZERS.get(name)
  k = 1 if name == "char" else tokenizer.chunk
  index = {s: i for i, s in enumerate(tokenizer.vocab)}
  rows = []
  for b, string_ in enumerate(text.strings()):
    sig, num, target = (a[b].tolist() for a in (text.sig_BxT, text.num_BxT, text.target_BxT))
    ids, sigs, nums, targets = [], [], [], []
    t = 0
    while t < len(string_):
      if num[t] < 0:
        ids.append(index[string_[t]]), sigs.append(-1), nums.append(-1), targets.append(target[t])
        t += 1
        continue
      end = t
      while end < len(string_) and num[end] == num[t]:
        end += 1
      n = end - t
      first = n % k or k if tokenizer.direction == "r2l" else min(k, n)
      cuts = [t] + list(range(t + first, end, k)) + [end]
      for c, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        if tokenizer.commas and c:
          ids.append(index["<,>"]), sigs.append(-1), nums.append(num[lo]), targets.append(target[lo])
        ids.append(index[string_[lo:hi]]), sigs.append(min(sig[lo:hi])), nums.append(num[lo])
        targets.append(target[lo])
      t = end
    rows.append((ids, sigs, nums, targets))
  return rows


@st.composite
def texts(draw) -> Text:
  """Random Texts: literal strings (digits included) and numbers of 1..200 digits."""
  batch = draw(st.integers(1, 3))
  parts, index = [], 0
  for _ in range(draw(st.integers(1, 6))):
    target = draw(st.booleans())
    if draw(st.booleans()):
      parts.append(const_text(draw(st.text(ALPHABET, max_size=4)), batch, target=target))
      continue
    lengths = draw(st.lists(st.integers(1, 200), min_size=batch, max_size=batch))
    values = [draw(st.integers(0 if n == 1 else 10**(n - 1), 10**n - 1)) for n in lengths]
    width = max(lengths) + draw(st.integers(0, 2)) if draw(st.booleans()) else None
    parts.append(number_text(Number.from_ints(values), index, reverse=draw(st.booleans()),
                             width=width, target=target))
    index += 1
  return concat(parts)


@settings(max_examples=150, deadline=None)
@given(texts())
def test_every_tokenizer_round_trips_and_matches_a_per_example_reference(text):
  for name in NAMES:
    tokenizer = TOKENIZERS.get(name)
    tb = tokenizer.encode(text)
    assert tb.tokens_BxT.dtype == np.int32 and tb.length_B.dtype == np.int32
    assert tb.sig_BxT.dtype == np.int16 and tb.num_BxT.dtype == np.int16
    assert tokenizer.decode(tb.tokens_BxT, tb.length_B) == text.strings()
    assert tokenizer.decode(tb.tokens_BxT) == text.strings()
    assert not tb.tokens_BxT[~tb.valid_BxT].any()
    for b, (ids, sig, num, target) in enumerate(reference_tokens(name, text)):
      n = tb.length_B[b]
      assert n == len(ids)
      assert tb.tokens_BxT[b, :n].tolist() == ids
      assert tb.sig_BxT[b, :n].tolist() == sig
      assert tb.num_BxT[b, :n].tolist() == num
      assert tb.target_BxT[b, :n].tolist() == target


def test_chunk1_equals_char():
  text = concat([const_text("a1=", 2), number_text(Number.from_ints([907, 12345]), 0)])
  char = TOKENIZERS.get("char").encode(text)
  for name in ("chunk1_l2r", "chunk1_r2l"):
    chunk = TOKENIZERS.get(name).encode(text)
    for field in ("tokens_BxT", "sig_BxT", "num_BxT", "target_BxT", "length_B"):
      np.testing.assert_array_equal(getattr(chunk, field), getattr(char, field))


def test_with_bos_eos_frames_rows_and_marks_eos_as_target():
  tokenizer = TOKENIZERS.get("char")
  text = concat([const_text("1+", 2), number_text(Number.from_ints([5, 678]), 0, target=True)])
  tb = with_bos_eos(tokenizer.encode(text), np.array([0, 7]))
  assert tokenizer.pieces(tb.tokens_BxT, tb.length_B) == [
      ["<bos>", "<task:0>", "1", "+", "5", "<eos>"],
      ["<bos>", "<task:7>", "1", "+", "6", "7", "8", "<eos>"]]
  np.testing.assert_array_equal(tb.length_B, [6, 8])
  np.testing.assert_array_equal(tb.target_BxT[0], [0, 0, 0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(tb.sig_BxT[1], [-1, -1, -1, -1, 2, 1, 0, -1])
  plain = with_bos_eos(tokenizer.encode(text))
  np.testing.assert_array_equal(plain.tokens_BxT[:, 0], [BOS_ID, BOS_ID])
  assert plain.tokens_BxT[0, 4] == EOS_ID and plain.length_B.tolist() == [5, 7]
  with pytest.raises(ValueError, match="task index 8"):
    with_bos_eos(tokenizer.encode(text), 8)


def test_characters_outside_the_vocabulary_raise_naming_the_character():
  tab = const_text("1\t2", 1)
  for name in NAMES:
    with pytest.raises(ValueError, match=r"'\\t'"):
      TOKENIZERS.get(name).encode(tab)


def test_non_digit_marked_as_number_raises():
  text = number_text(Number.from_ints([12]), 0)
  bad = Text(np.array([[ord("1"), ord("x")]], np.uint8), text.sig_BxT, text.num_BxT,
             text.target_BxT, text.length_B)
  with pytest.raises(ValueError, match="'x'"):
    TOKENIZERS.get("chunk2_r2l").encode(bad)


def test_decode_rejects_ids_outside_the_vocabulary():
  with pytest.raises(ValueError, match=r"\[0, 107\)"):
    TOKENIZERS.get("char").decode(np.array([[5, 107]]))


def test_token_batch_is_frozen():
  tb = TOKENIZERS.get("char").encode(const_text("1", 1))
  assert isinstance(tb, TokenBatch)
  with pytest.raises(AttributeError):
    tb.length_B = None


def test_nul_inside_a_row_raises():
  text = const_text("12", 1)
  bad = Text(np.array([[ord("1"), 0]], np.uint8), text.sig_BxT, text.num_BxT, text.target_BxT,
             text.length_B)
  for name in ("char", "chunk2_l2r"):
    with pytest.raises(ValueError, match="NUL"):
      TOKENIZERS.get(name).encode(bad)
