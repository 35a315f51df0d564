"""Position-ID rules: the papers' examples (docs/methods.md#position-id-rules), training-time randomization, bad options."""

import itertools

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from data_gen import pipeline
from data_gen.formats import render
from data_gen.positions import POSITIONS, sorted_subsets
from data_gen.text import Number, Problem, concat, const_text, number_text
from data_gen.tokenizers import EOS_ID, NUM_SPECIAL, PAD_ID, TOKENIZERS, with_bos_eos

CHAR = TOKENIZERS.get("char")


def rng(seed: int = 0) -> np.random.Generator:
  return np.random.default_rng(seed)


def abacus_example():
  """docs/methods.md#abacus: `3 2 1 + 7 6 5 4 = 0 9 6 4` (123 + 4567 = 4690, all reversed)."""
  text = concat([number_text(Number.from_ints([123]), 0, reverse=True), const_text("+", 1),
                 number_text(Number.from_ints([4567]), 1, reverse=True), const_text("=", 1),
                 number_text(Number.from_ints([4690]), 2, reverse=True, target=True)])
  assert text.strings() == ["321+7654=0964"]
  return CHAR.encode(text)


def coupling_example(batch: int = 1):
  """docs/methods.md#position-coupling: 123+4567 with operands padded to 4 digits, answer to 5 and reversed."""
  text = concat([number_text(Number.from_ints([123] * batch), 0, width=4), const_text("+", batch),
                 number_text(Number.from_ints([4567] * batch), 1, width=4),
                 const_text("=", batch),
                 number_text(Number.from_ints([4690] * batch), 2, reverse=True, width=5,
                             target=True)])
  assert text.strings() == ["0123+4567=09640"] * batch
  return CHAR.encode(text)


def test_registry_lists_every_rule():
  assert POSITIONS.names() == ["abacus", "coupling", "randomized", "sequential"]
  with pytest.raises(ValueError, match="abacus, coupling, randomized, sequential"):
    POSITIONS.get("fire")


def test_sequential_counts_from_bos_and_is_zero_at_padding():
  tb = with_bos_eos(CHAR.encode(concat([const_text("1+", 2),
                                        number_text(Number.from_ints([5, 67]), 0)])))
  ids = POSITIONS.get("sequential")(tb, rng(), train=True)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, [[0, 1, 2, 3, 4, 0], [0, 1, 2, 3, 4, 5]])


def test_abacus_papers_example():
  ids = POSITIONS.get("abacus")(abacus_example(), rng(), train=False)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, [[1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]])


def test_abacus_offset_is_one_per_batch_and_only_in_training():
  tb = abacus_example()
  test_ids = POSITIONS.get("abacus")(tb, rng(), train=False)
  offsets = set()
  for seed in range(40):
    ids = POSITIONS.get("abacus")(tb, rng(seed), train=True, max_offset=5)
    offset = ids[test_ids > 0] - test_ids[test_ids > 0]
    assert len(set(offset.tolist())) == 1
    assert (ids[test_ids == 0] == 0).all()
    offsets.add(int(offset[0]))
  assert offsets == set(range(6))
  framed = with_bos_eos(CHAR.encode(number_text(Number.from_ints([12, 3456]), 0)))
  ids = POSITIONS.get("abacus")(framed, rng(3), train=True)
  k = ids[0, 1] - 1
  np.testing.assert_array_equal(ids, [[0, 1 + k, 2 + k, 0, 0, 0],
                                      [0, 1 + k, 2 + k, 3 + k, 4 + k, 0]])
  with pytest.raises(ValueError, match="max_offset -1"):
    POSITIONS.get("abacus")(tb, rng(), train=True, max_offset=-1)


def test_coupling_papers_example():
  ids = POSITIONS.get("coupling")(coupling_example(), rng(), train=False, max_pos=10)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids[0, :9], [5, 4, 3, 2, 1, 5, 4, 3, 2])
  np.testing.assert_array_equal(ids[0, 9:], [1, 2, 3, 4, 5, 6])


def test_coupling_start_is_random_per_example_in_training_and_in_range():
  tb = coupling_example(batch=200)
  test_ids = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=12)
  ids = POSITIONS.get("coupling")(tb, rng(1), train=True, max_pos=12)
  shift = ids - test_ids
  assert (shift == shift[:, :1]).all()
  s = shift[:, 0] + 1
  assert s.min() == 1 and s.max() == 12 - 5  # 5 places: the padded answer's length
  assert ids.max() == 12


def test_coupling_gives_special_tokens_zero():
  tb = with_bos_eos(coupling_example(), 2)
  ids = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=10)
  np.testing.assert_array_equal(ids[0], [0, 0, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 0])


def test_coupling_two_levels_for_multi_operand_addition():
  # 12 + 345 + 6 = 363 with operands padded to 3 digits, answer reversed to 4 digits.
  text = concat([number_text(Number.from_ints([12]), 0, width=3), const_text("+", 1),
                 number_text(Number.from_ints([345]), 1, width=3), const_text("+", 1),
                 number_text(Number.from_ints([6]), 2, width=3), const_text("=", 1),
                 number_text(Number.from_ints([363]), 3, reverse=True, width=4, target=True)])
  assert text.strings() == ["012+345+006=3630"]
  tb = with_bos_eos(CHAR.encode(text))
  ids = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=8, levels=2, max_pos_number=4)
  assert ids.shape == (1, 18, 2) and ids.dtype == np.int32
  np.testing.assert_array_equal(ids[0, :, 0],
                                [0, 4, 3, 2, 1, 4, 3, 2, 1, 4, 3, 2, 1, 2, 3, 4, 5, 0])
  np.testing.assert_array_equal(ids[0, :, 1],
                                [0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 1, 0])
  train = POSITIONS.get("coupling")(tb, rng(5), train=True, max_pos=8, levels=2,
                                    max_pos_number=4)
  shift = (train - ids)[0, 1:-1]
  assert (shift == shift[0]).all() and 0 <= shift[0, 1] <= 1 and 0 <= shift[0, 0] <= 3


def test_coupling_bad_options_raise():
  tb = coupling_example()
  with pytest.raises(ValueError, match="max_pos=5 is too small.*max_pos >= 6"):
    POSITIONS.get("coupling")(tb, rng(), train=True, max_pos=5)
  with pytest.raises(ValueError, match="max_pos=5"):
    POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=5)
  with pytest.raises(ValueError, match="levels 3"):
    POSITIONS.get("coupling")(tb, rng(), train=True, max_pos=10, levels=3)
  with pytest.raises(ValueError, match="max_pos_number"):
    POSITIONS.get("coupling")(tb, rng(), train=True, max_pos=10, levels=2)
  with pytest.raises(ValueError, match="max_pos_number=1 is too small"):
    POSITIONS.get("coupling")(tb, rng(), train=True, max_pos=10, levels=2, max_pos_number=1)


def test_chunks_count_as_one_digit():
  text = concat([number_text(Number.from_ints([8302080]), 0), const_text("+", 1),
                 number_text(Number.from_ints([12345]), 1), const_text("=", 1),
                 number_text(Number.from_ints([8314425]), 2, target=True)])
  comma = TOKENIZERS.get("comma")
  tb = comma.encode(text)
  assert comma.pieces(tb.tokens_BxT) == [
      ["8", ",", "302", ",", "080", "+", "12", ",", "345", "=", "8", ",", "314", ",", "425"]]
  abacus = POSITIONS.get("abacus")(tb, rng(), train=False)
  np.testing.assert_array_equal(abacus[0], [1, 0, 2, 0, 3, 0, 1, 0, 2, 0, 1, 0, 2, 0, 3])
  coupling = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=4)
  np.testing.assert_array_equal(coupling[0], [4, 1, 3, 1, 2, 1, 3, 1, 2, 1, 4, 1, 3, 1, 2])
  # l2r: 830|208|0 + 123|45 = 831|442|5; lowest significances 4,1,0 / 2,0 / 4,1,0 give
  # places 3,1,0 / 2,0 / 3,1,0 (equal significance, equal ID; places consecutive).
  l2r = TOKENIZERS.get("chunk3_l2r").encode(text)
  np.testing.assert_array_equal(l2r.sig_BxT[0], [4, 1, 0, -1, 2, 0, -1, 4, 1, 0])
  coupling = POSITIONS.get("coupling")(l2r, rng(), train=False, max_pos=5)
  np.testing.assert_array_equal(coupling[0], [5, 3, 2, 1, 4, 2, 1, 5, 3, 2])


@st.composite
def token_batches(draw):
  """Random framed token batches: literals and numbers of 1..30 digits, any tokenizer."""
  batch = draw(st.integers(1, 3))
  parts, index = [], 0
  for _ in range(draw(st.integers(1, 5))):
    target = draw(st.booleans())
    if draw(st.booleans()):
      parts.append(const_text(draw(st.sampled_from(["+", "=", "12", " , ", ""])), batch,
                              target=target))
      continue
    values = [draw(st.integers(0, 10**draw(st.integers(1, 30)) - 1)) for _ in range(batch)]
    parts.append(number_text(Number.from_ints(values), index, reverse=draw(st.booleans()),
                             target=target))
    index += 1
  tokenizer = TOKENIZERS.get(draw(st.sampled_from(TOKENIZERS.names())))
  return with_bos_eos(tokenizer.encode(concat(parts)))


@settings(max_examples=80, deadline=None)
@given(token_batches())
def test_abacus_and_coupling_match_a_per_example_reference(tb):
  abacus = POSITIONS.get("abacus")(tb, rng(), train=False)
  coupling = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=200)
  for b, n in enumerate(tb.length_B):
    sig, num = tb.sig_BxT[b, :n].tolist(), tb.num_BxT[b, :n].tolist()
    places = sorted({s for s in sig if s >= 0})
    expected_abacus, expected_coupling = [], []
    counted = {}  # digits of each number so far
    for t in range(n):
      if sig[t] >= 0:
        counted[num[t]] = counted.get(num[t], 0) + 1
      expected_abacus.append(counted[num[t]] if sig[t] >= 0 else 0)
      special = tb.tokens_BxT[b, t] < NUM_SPECIAL
      expected_coupling.append(0 if special else 2 + places.index(sig[t]) if sig[t] >= 0 else 1)
    assert abacus[b, :n].tolist() == expected_abacus
    assert coupling[b, :n].tolist() == expected_coupling
    assert not abacus[b, n:].any() and not coupling[b, n:].any()


@st.composite
def batches(draw):
  lengths = draw(st.lists(st.integers(1, 60), min_size=1, max_size=4))
  text = concat([const_text("=", len(lengths)),
                 number_text(Number.from_ints([10**(n - 1) for n in lengths]), 0)])
  return with_bos_eos(CHAR.encode(text))


@settings(max_examples=40, deadline=None)
@given(batches(), st.integers(64, 300), st.booleans(), st.integers(0, 2**31))
def test_randomized_ids_are_sorted_unique_and_in_range(tb, L, train, seed):
  ids = POSITIONS.get("randomized")(tb, rng(seed), train=train, L=L)
  assert ids.dtype == np.int32 and ids.shape == tb.tokens_BxT.shape
  for row, n in zip(ids, tb.length_B):
    assert (np.diff(row[:n]) > 0).all()
    assert 0 <= row[0] and row[n - 1] < L
    assert (row[n:] == 0).all()


def test_randomized_subsets_are_uniform():
  size = np.array([2] * 6000 + [3] * 6000)
  ids = sorted_subsets(rng(7), size, 3, 5)
  for n, rows in ((2, ids[:6000, :2]), (3, ids[6000:])):
    counts = {}
    for row in map(tuple, rows.tolist()):
      counts[row] = counts.get(row, 0) + 1
    assert set(counts) == set(itertools.combinations(range(5), n))
    expected = 6000 / len(counts)
    assert max(abs(c - expected) for c in counts.values()) < 5 * np.sqrt(expected)
  np.testing.assert_array_equal(sorted_subsets(rng(), np.array([5, 5]), 5, 5), [range(5)] * 2)


def test_randomized_at_test_time_uses_a_fixed_seed():
  tb = coupling_example(batch=3)
  first = POSITIONS.get("randomized")(tb, rng(1), train=False, L=100)
  second = POSITIONS.get("randomized")(tb, rng(2), train=False, L=100)
  np.testing.assert_array_equal(first, second)
  assert not np.array_equal(POSITIONS.get("randomized")(tb, rng(1), train=True, L=100),
                            POSITIONS.get("randomized")(tb, rng(2), train=True, L=100))


def test_randomized_rejects_l_below_the_sequence_length():
  with pytest.raises(ValueError, match="L=10 is smaller than a sequence of 15 tokens"):
    POSITIONS.get("randomized")(coupling_example(), rng(), train=True, L=10)


def test_randomized_test_ids_do_not_reveal_the_answer_length():
  """At test time a row's IDs (prompt and every answer slot it fills) are the same whether its
  answer is short or long, given the batch's longest answer; training draws for the row's length."""
  def batch(answers):
    text = concat([const_text("12+34=", len(answers)),
                   number_text(Number.from_ints(answers), 2, reverse=True, target=True)])
    return with_bos_eos(CHAR.encode(text))
  randomized = POSITIONS.get("randomized")
  short, long = batch([6, 466, 46]), batch([466, 466, 46])
  ids_short, ids_long = (randomized(tb, rng(), train=False, L=50) for tb in (short, long))
  np.testing.assert_array_equal(ids_short[0, :9], ids_long[0, :9])  # BOS, prompt, the first two answer slots
  assert ids_short[0, 9:].max() == 0 and (np.diff(ids_long[0, :11]) > 0).all()
  np.testing.assert_array_equal(ids_short[1:], ids_long[1:])
  train = randomized(long, rng(), train=True, L=50)
  assert (np.diff(train[0, :11]) > 0).all() and (train[2, long.length_B[2]:] == 0).all()


# ---- random training offsets (sequential, abacus, coupling) --------------------------------


def test_sequential_offset_is_off_by_default_and_draws_nothing():
  tb = coupling_example(batch=3)
  generator = rng(4)
  state = generator.bit_generator.state
  np.testing.assert_array_equal(POSITIONS.get("sequential")(tb, generator, train=True),
                                [range(15)] * 3)
  assert generator.bit_generator.state == state


def test_sequential_offset_per_example_or_per_batch_and_at_test():
  framed = with_bos_eos(CHAR.encode(number_text(Number.from_ints([7] * 300 + [12345]), 0)))
  base = POSITIONS.get("sequential")(framed, rng(), train=False)
  valid = base > 0
  valid[:, 0] = True
  for per in ("example", "batch"):
    ids = POSITIONS.get("sequential")(framed, rng(1), train=True, max_offset=6, offset_per=per)
    k = ids[:, 0]
    np.testing.assert_array_equal(ids, np.where(valid, base + k[:, None], 0))
    assert set(k.tolist()) == (set(range(7)) if per == "example" else {k[0]})
  test = POSITIONS.get("sequential")(framed, rng(1), train=False, max_offset=6, test_offset=2)
  np.testing.assert_array_equal(test, np.where(valid, base + 2, 0))
  np.testing.assert_array_equal(test[[0, -1]], [[2, 3, 4, 0, 0, 0, 0], [2, 3, 4, 5, 6, 7, 8]])


@pytest.mark.parametrize("rule, options, match", [
    ("sequential", {"max_offset": -1}, "sequential max_offset -1 must be >= 0"),
    ("sequential", {"test_offset": -2}, "sequential test_offset -2 must be >= 0"),
    ("sequential", {"max_offset": 3, "offset_per": "step"}, "offset_per 'step' unknown; choose one of: batch, example"),
    ("abacus", {"offset_per": "row"}, "abacus offset_per 'row' unknown"),
    ("coupling", {"max_pos": 10, "offset_per": "row"}, "coupling offset_per 'row' unknown")])
def test_offset_options_are_validated(rule, options, match):
  with pytest.raises(ValueError, match=match):
    POSITIONS.get(rule)(coupling_example(), rng(), train=True, **options)
  cfg = pipeline.default_data_config()
  cfg.positions, cfg.position_options = rule, options
  with pytest.raises(ValueError, match=match):
    pipeline.validate_data_config(cfg)


def test_abacus_offset_per_example_and_coupling_start_per_batch():
  tb = coupling_example(batch=200)
  test_ids = POSITIONS.get("abacus")(tb, rng(), train=False)
  ids = POSITIONS.get("abacus")(tb, rng(2), train=True, max_offset=5, offset_per="example")
  shift = np.where(test_ids > 0, ids - test_ids, -1)
  k = shift.max(axis=1)
  assert ((shift == k[:, None]) | (test_ids == 0)).all() and set(k.tolist()) == set(range(6))
  test_ids = POSITIONS.get("coupling")(tb, rng(), train=False, max_pos=12)
  ids = POSITIONS.get("coupling")(tb, rng(2), train=True, max_pos=12, offset_per="batch")
  shift = ids - test_ids
  assert (shift == shift[0, 0]).all() and 0 <= shift[0, 0] <= 12 - 5 - 1


def test_sequential_offset_through_the_pipeline():
  cfg = pipeline.default_data_config()
  cfg.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  plain = pipeline.sample_batch(cfg, seed=0, step=0, batch_size=64)
  cfg.position_options = {"max_offset": 9}
  shifted = pipeline.sample_batch(cfg, seed=0, step=0, batch_size=64)
  np.testing.assert_array_equal(shifted["tokens"], plain["tokens"])
  k = shifted["positions"][:, 0]
  np.testing.assert_array_equal(shifted["positions"], np.where(plain["tokens"] > 0, plain["positions"] + k[:, None], 0))
  assert len(set(k.tolist())) > 5
  evaluation = pipeline.eval_batch(cfg, (2, 2), 4, seed=0)
  assert evaluation["prompt_positions"][:, -1].tolist() == [7] * 4  # BOS $ 2 digits + 2 digits = at 7


# ---- Abacus across index hints and spaces ---------------------------------------------------


def addition_problem(a, b):
  return Problem((Number.from_ints(a), Number.from_ints(b)),
                 (Number.from_ints([x + y for x, y in zip(a, b)]),), "+")


def test_abacus_counts_digits_across_index_hints():
  text = render(addition_problem([123], [4567]), "index_hints+reverse_operands+reverse_answer")
  assert text.strings() == ["a3b2c1+a7b6c5d4=a0b9c6d4"]
  ids = POSITIONS.get("abacus")(CHAR.encode(text), rng(), train=False)
  np.testing.assert_array_equal(ids[0], [0, 1, 0, 2, 0, 3, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0,
                                         0, 1, 0, 2, 0, 3, 0, 4])


def test_abacus_counts_digits_across_random_spaces():
  text = render(addition_problem([123, 98765], [4567, 43]), "random_spaces+reverse_operands+reverse_answer", rng(3))
  tb = CHAR.encode(text)
  ids = POSITIONS.get("abacus")(tb, rng(), train=False)
  assert " " in text.strings()[0]
  for b, row in enumerate(text.strings()):
    expected, count = [], 0
    for c in row:
      count = 0 if c in "+=" else count + c.isdigit()
      expected.append(count if c.isdigit() else 0)
    assert ids[b, :len(row)].tolist() == expected


# ---- coupling never tells the model its answer's length -------------------------------------


COUPLING_SWITCHES = ("reverse_answer", "reverse_operands", "pad", "index_hints", "dollar")
COUPLING_FORMATS = ["+".join(c) or "plain" for n in range(len(COUPLING_SWITCHES) + 1)
                    for c in itertools.combinations(COUPLING_SWITCHES, n)] + [
    "reverse_answer+random_spaces", "natural_language+pad", "natural_language+reverse_answer", "pad4",
    "pad5+reverse_answer+index_hints"]


@pytest.mark.parametrize("fmt", COUPLING_FORMATS)
@pytest.mark.parametrize("task, cell", [("addition", (3, 3)), ("multiplication", (2, 2))])
def test_coupling_answer_ids_are_the_same_for_every_problem_of_a_cell(fmt, task, cell):
  """The ID of every answer slot the decoder feeds back (each answer token before EOS) is the
  same across the problems of a cell, with or without a final carry, given the kinds of the
  tokens written so far (a digit, or which other token: a `$` that closes a shorter answer may
  sit where a longer answer has a digit, and the decoder has then written it). Formats that
  cannot give that (an answer most-significant digit first at its own length, whose first
  digit's ID would be its place) are refused with a ValueError."""
  cfg = pipeline.default_data_config()
  cfg.update(task=task, format=fmt, positions="coupling", position_options={"max_pos": 30})
  cfg.train_lengths = {axis: (1, 4) for axis in (("len_0", "len_1") if task == "addition" else ("len_a", "len_b"))}
  if "reverse_answer" not in fmt and "pad" not in fmt:
    with pytest.raises(ValueError, match="data.positions='coupling' with data.format=.*reverse_answer.*pad"):
      pipeline.validate_data_config(cfg)
    return
  pipeline.validate_data_config(cfg)
  batch = pipeline.eval_batch(cfg, cell, 300, seed=0)
  answer, ids = batch["answer"], batch["answer_positions"]
  written = ["".join(c for c in row if c.isdigit()) for row in CHAR.decode(answer)]
  values = [int(w[::-1] if "reverse_answer" in fmt else w) for w in written]
  assert len({len(str(v)) for v in values}) == 2  # answers with and without a carry out of the top
  kind = np.where(batch["digit_mask"], -1, answer)
  fed = (answer != EOS_ID) & (answer != PAD_ID)
  for slot in range(answer.shape[1]):
    seen = {}
    for b in np.flatnonzero(fed[:, slot]):
      assert seen.setdefault(tuple(kind[b, :slot + 1]), ids[b, slot]) == ids[b, slot], (fmt, slot)
  if "random_spaces" not in fmt and "natural_language" not in fmt:
    prompt_ids = batch["prompt_positions"]
    assert (prompt_ids == prompt_ids[0]).all()
