"""data_gen.text: Number/Problem/Text, packed records, pieces and their assembly."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from data_gen.text import (DROP, RECORD, Number, Problem, Text, assemble, assemble_slots, choice_slot, concat,
                           const_text, digits_piece, list_slot, literal_piece, literal_slot, number_piece,
                           number_slot, number_text, record, records_text, repeat_slot, text_records, when)


def test_number_round_trips_python_ints():
  values = [0, 7, 10, 128, 10**30 + 5]
  number = Number.from_ints(values)
  assert number.to_ints() == values
  assert number.length_B.tolist() == [1, 1, 2, 3, 31]
  assert number.to_strs()[3] == "128"
  assert Number.from_array(np.array([0, 9, 10, 2**62])).to_ints() == [0, 9, 10, 2**62]
  assert Number.from_array(np.array([0, 5])).length_B.tolist() == [1, 1]


def test_number_rejects_negative_values():
  with pytest.raises(ValueError, match="non-negative"):
    Number.from_ints([3, -1])
  with pytest.raises(ValueError, match="non-negative"):
    Number.from_array(np.array([-4]))


def test_problem_take_keeps_every_field():
  problem = Problem((Number.from_ints([1, 2, 3]),), (Number.from_ints([4, 5, 6]),), " ", layout="list",
                    prefix="S", query=Number.from_ints([7, 8, 9]), operand_count_B=np.array([1, 1, 1]),
                    answer_count_B=np.array([1, 1, 1]))
  sub = problem.take(np.array([2, 0]))
  assert sub.operands[0].to_ints() == [3, 1] and sub.answers[0].to_ints() == [6, 4]
  assert sub.query.to_ints() == [9, 7] and sub.prefix == "S" and sub.layout == "list"
  assert sub.operand_count_B.tolist() == [1, 1] and sub.batch == 2


def test_problem_rejects_unknown_layout():
  with pytest.raises(ValueError, match="arithmetic"):
    Problem((Number.from_ints([1]),), (Number.from_ints([1]),), "+", layout="grid")


def test_record_packing_matches_the_record_dtype():
  packed = np.array([(ord("7"), True, 3, 2, 0), (ord("+"), False, -1, -1, 0)], RECORD).view("<i8")
  assert packed.tolist() == [record("7", sig=3, num=2, target=True), record("+")]


def test_text_records_round_trip():
  text = concat([number_text(Number.from_ints([12, 345]), 0), const_text("=", 2),
                 number_text(Number.from_ints([9, 10]), 1, reverse=True, target=True)])
  back = records_text(text_records(text), text.length_B)
  for field in ("chars_BxT", "sig_BxT", "num_BxT", "target_BxT", "length_B"):
    np.testing.assert_array_equal(getattr(back, field), getattr(text, field))


def test_number_text_annotations():
  text = number_text(Number.from_ints([128, 5]), 3, width=4, target=True)
  assert text.strings() == ["0128", "0005"]
  assert text.sig_BxT.tolist() == [[3, 2, 1, 0], [3, 2, 1, 0]]
  assert (text.num_BxT == 3).all() and text.target_BxT.all()
  reverse = number_text(Number.from_ints([128, 5]), 0, reverse=True)
  assert reverse.strings() == ["821", "5"]
  assert reverse.sig_BxT.tolist() == [[0, 1, 2], [0, -1, -1]]
  assert reverse.chars_BxT[1].tolist() == [ord("5"), 0, 0]
  plain = number_text(Number.from_ints([40]), None)
  assert plain.sig_BxT.tolist() == [[-1, -1]] and plain.num_BxT.tolist() == [[-1, -1]]
  per_row = number_text(Number.from_ints([1, 2]), np.array([4, 6]))
  assert per_row.num_BxT.tolist() == [[4], [6]]


def test_padding_below_a_length_is_an_error():
  with pytest.raises(ValueError, match="padding width 2 is below an operand length 3"):
    number_text(Number.from_ints([128]), 0, width=2)


def test_concat_is_ragged_and_pads_with_zero():
  text = concat([const_text("$", 2), number_text(Number.from_ints([1, 234]), 0), const_text("=", 2, target=True)])
  assert text.strings() == ["$1=", "$234="]
  assert text.chars_BxT[0, 3:].tolist() == [0, 0]
  assert text.target_BxT.tolist() == [[False, False, True, False, False], [False] * 4 + [True]]
  assert text.sig_BxT[0, 3:].tolist() == [-1, -1] and text.num_BxT[0, 3:].tolist() == [-1, -1]
  with pytest.raises(ValueError, match="at least one"):
    concat([])


def test_digits_piece_separators_hints_and_absent_items():
  digits = np.array([[[8, 2, 1], [7, 6, 3]]], np.int8)
  spaced = assemble([digits_piece(digits, np.array([[3, 2]]), index_BxN=np.array([[0, 1]]), between=",",
                                  after=" ", after_length_BxN=np.array([[1, 0]]))])
  assert spaced.strings() == ["1,2,8 6,7"]
  assert spaced.num_BxT[0].tolist() == [0, -1, 0, -1, 0, -1, 1, -1, 1]
  assert spaced.sig_BxT[0].tolist() == [2, -1, 1, -1, 0, -1, 1, -1, 0]
  hinted = assemble([digits_piece(digits, np.array([[3, 0]]), hints="abc", reverse=True)])
  assert hinted.strings() == ["a8b2c1"]
  with pytest.raises(ValueError, match="at most 2 digits"):
    digits_piece(digits, np.array([[3, 3]]), hints="ab")


def test_choice_and_repeat_slots_and_when_pieces():
  slots = assemble_slots([choice_slot(["ab", "", "xyz"], np.array([2, 1, 0])), repeat_slot(" a", np.array([1, 0, 2])),
                          literal_slot("!", target=True)])
  assert slots.strings() == ["xyz a!", "!", "ab a a!"]
  assert slots.length_B.tolist() == [6, 1, 7]
  text = assemble([literal_piece("ab"), when(literal_piece("!"), np.array([True, False, True]))])
  assert text.strings() == ["ab!", "ab", "ab!"]


def test_pieces_mark_dropped_records_with_drop():
  piece = number_piece(Number.from_ints([5, 123]), 0)
  positions = piece.table[piece.row_BxN[:, 0]]
  assert positions[0].tolist() == [0, DROP, DROP]
  assert positions[1].tolist() == [2, 1, 0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 10**40), min_size=1, max_size=4), min_size=1, max_size=3),
       st.booleans())
def test_assembled_numbers_read_back_from_annotations(rows, reverse):
  """Every written number can be read back from (num, sig, char): annotations are exact."""
  parts = []
  width = max(len(r) for r in rows)
  columns = [[r[k] if k < len(r) else 0 for r in rows] for k in range(width)]
  for k, values in enumerate(columns):
    parts += [const_text("+", len(rows))] * (k > 0) + [number_text(Number.from_ints(values), k, reverse=reverse)]
  text = concat(parts)
  assert text.strings() == ["+".join((str(v)[::-1] if reverse else str(v)) for v in col)
                            for col in zip(*columns)]
  for b in range(len(rows)):
    for k in range(width):
      on = text.num_BxT[b] == k
      digits = {int(s): int(chr(c)) for s, c in zip(text.sig_BxT[b][on], text.chars_BxT[b][on])}
      assert sum(d * 10**s for s, d in digits.items()) == columns[k][b]


def test_deferred_annotations_are_computed_once_on_first_read():
  calls = []
  sig, num = np.array([[0, -1]], np.int16), np.array([[0, -1]], np.int16)
  text = Text.deferred(lambda: calls.append(1) or (sig, num), chars_BxT=np.array([[ord("5"), ord("+")]], np.uint8),
                       target_BxT=np.zeros((1, 2), bool), length_B=np.array([2], np.int32))
  assert calls == [] and text.strings() == ["5+"]
  assert text.num_BxT is num and text.sig_BxT is sig and calls == [1]
  with pytest.raises(AttributeError):
    text.chars_BxT = None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**25), st.integers(0, 10**25)), min_size=1, max_size=4),
       st.booleans(), st.booleans(), st.sampled_from([None, "pad", 27]))
def test_slots_write_what_pieces_write(rows, reverse, hints, pad):
  """The fast path (`assemble_slots`) and the general one (`assemble`) agree on every field."""
  a, b = (Number.from_ints(column) for column in zip(*rows))
  width = None if pad is None else np.maximum(a.length_B, b.length_B) if pad == "pad" else pad
  letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if hints else ""
  slots = [literal_slot("$"), number_slot(a, 0, reverse=reverse, width=width, hints=letters), literal_slot("+"),
           number_slot(b, 1, width=width, hints=letters), literal_slot("=", target=True)]
  pieces = [literal_piece("$"), number_piece(a, 0, reverse=reverse, width=width, hints=letters), literal_piece("+"),
            number_piece(b, 1, width=width, hints=letters), literal_piece("=", target=True)]
  fast, general = assemble_slots(slots), assemble(pieces)
  for field in ("chars_BxT", "sig_BxT", "num_BxT", "target_BxT", "length_B"):
    np.testing.assert_array_equal(getattr(fast, field), getattr(general, field), err_msg=field)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.booleans(), st.booleans(), st.integers(0, 2**32))
def test_list_slot_writes_what_digits_piece_writes(batch, k, w, reverse, hints, seed):
  """Lists with per-row counts (absent numbers, separators between the written ones) and
  per-row first indices: every field agrees between the two paths."""
  rng = np.random.default_rng(seed)
  digits = rng.integers(0, 10, (batch, k, w)).astype(np.int8)
  count = rng.integers(1, k + 1, batch)
  lengths = np.where(np.arange(k) < count[:, None], rng.integers(1, w + 1, (batch, k)), 0)
  digits *= np.arange(w) < lengths[..., None]
  first = rng.integers(0, 4, batch)
  after = np.arange(k) < count[:, None] - 1
  letters = "abcdefghij" if hints else ""
  slot = list_slot(digits, lengths, first, reverse=reverse, hints=letters, target=True, after=" ", after_BxK=after)
  piece = digits_piece(digits, lengths, index_BxN=first[:, None] + np.arange(k), reverse=reverse, hints=letters,
                       target=True, after=" ", after_length_BxN=after.astype(np.int64))
  fast = assemble_slots([literal_slot("S "), slot, literal_slot(" E", target=True)])
  general = assemble([literal_piece("S "), piece, literal_piece(" E", target=True)])
  for field in ("chars_BxT", "sig_BxT", "num_BxT", "target_BxT", "length_B"):
    np.testing.assert_array_equal(getattr(fast, field), getattr(general, field), err_msg=field)
