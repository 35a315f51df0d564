"""data_gen.tasks: every answer equals Python's big-int result, at exactly the asked lengths."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from data_gen.tasks import TASKS, build
from data_gen.tasks.addition import count_carries
from data_gen.text import Number

NAMES = ["addition", "bucket_sort", "count_hint", "counting_repeat", "counting_successor", "multiplication",
         "predecessor_hint", "sorting", "successor_hint"]
LENGTH = st.integers(1, 200)


def check_exact(number, length_B):
  """The numbers have exactly these lengths, no leading zeros, and zeros beyond."""
  assert number.length_B.tolist() == list(length_B)
  assert [len(s) for s in map(str, number.to_ints())] == list(length_B)
  beyond = np.arange(number.digits_BxW.shape[1]) >= number.length_B[:, None]
  assert not number.digits_BxW[beyond].any()


def listed(numbers, count_B):
  """Row b's first count_B[b] numbers as Python ints."""
  values = [n.to_ints() for n in numbers]
  return [[values[k][b] for k in range(c)] for b, c in enumerate(count_B)]


def test_registry_and_build_errors():
  assert TASKS.names() == NAMES
  with pytest.raises(ValueError, match="addition, bucket_sort"):
    build("additon")
  with pytest.raises(ValueError, match=r"no option\(s\) \['operands'\].*n_operands"):
    build("addition", operands=3)
  with pytest.raises(ValueError, match="n_operands=1"):
    build("addition", n_operands=1)
  with pytest.raises(ValueError, match="balanced_carries needs n_operands=2"):
    build("addition", n_operands=3, balanced_carries=True)
  with pytest.raises(ValueError, match="alphabet=11"):
    build("bucket_sort", alphabet=11)


@pytest.mark.parametrize("name, lengths, message", [
    ("addition", [[3, 0]], "len_1=0 is below its minimum 1"),
    ("multiplication", [[3, 2, 1]], r"shape \[B>=1, 2\]"),
    ("sorting", [[0, 3]], "count=0"),
    ("counting_successor", [[0, 2]], "count=0 is below its minimum 1"),
    ("counting_repeat", [[-2]], "count=-2"),
    ("successor_hint", [[1, 3]], "count=1 is below its minimum 2"),
    ("predecessor_hint", [[1, 3]], "count=1 is below its minimum 2"),
    ("bucket_sort", [[1.5]], "integers"),
])
def test_bad_lengths_are_errors(name, lengths, message):
  with pytest.raises(ValueError, match=message):
    build(name).sample(np.random.default_rng(0), np.array(lengths))


def test_length_axes():
  assert build("addition", n_operands=3).length_axes == ("len_0", "len_1", "len_2")
  assert build("multiplication").length_axes == ("len_a", "len_b")
  assert build("sorting").length_axes == ("count", "digits")
  assert build("bucket_sort").length_axes == ("length",)
  assert build("counting_repeat").length_axes == ("count",)


def test_sampling_is_a_function_of_the_rng():
  task = build("addition")
  lengths = np.array([[5, 7], [1, 1]])
  first = task.sample(np.random.default_rng(3), lengths)
  second = task.sample(np.random.default_rng(3), lengths)
  assert first.answers[0].to_ints() == second.answers[0].to_ints()


def test_one_digit_operands_include_zero():
  problem = build("addition").sample(np.random.default_rng(0), np.ones((500, 2), int))
  values = problem.operands[0].to_ints()
  assert min(values) == 0 and max(values) == 9


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4), st.lists(LENGTH, min_size=4, max_size=12), st.integers(0, 2**32))
def test_addition_matches_big_ints(n, flat_lengths, seed):
  lengths = np.array(flat_lengths[: len(flat_lengths) // n * n]).reshape(-1, n)
  problem = build("addition", n_operands=n).sample(np.random.default_rng(seed), lengths)
  assert problem.op == "+" and problem.layout == "arithmetic"
  for k, operand in enumerate(problem.operands):
    check_exact(operand, lengths[:, k])
  expected = [sum(row) for row in zip(*(o.to_ints() for o in problem.operands))]
  check_exact(problem.answers[0], [len(str(v)) for v in expected])
  assert problem.answers[0].to_ints() == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(LENGTH, LENGTH), min_size=1, max_size=4), st.integers(0, 2**32))
def test_balanced_carries_match_big_ints(lengths, seed):
  lengths = np.array(lengths)
  problem = build("addition", balanced_carries=True).sample(np.random.default_rng(seed), lengths)
  a, b = problem.operands
  check_exact(a, lengths[:, 0])
  check_exact(b, lengths[:, 1])
  assert problem.answers[0].to_ints() == [x + y for x, y in zip(a.to_ints(), b.to_ints())]
  carries = count_carries(a, b)
  assert ((0 <= carries) & (carries <= lengths.max(axis=1))).all()


@pytest.mark.parametrize("len_a, len_b", [(3, 3), (5, 2), (1, 1)])
def test_balanced_carries_are_uniform(len_a, len_b):
  """Lee et al.'s balance: every carry count 0..max length about equally often."""
  batch = 6000
  problem = build("addition", balanced_carries=True).sample(
      np.random.default_rng(0), np.tile([len_a, len_b], (batch, 1)))
  counts = np.bincount(count_carries(*problem.operands), minlength=max(len_a, len_b) + 1)
  expected = batch / (max(len_a, len_b) + 1)
  assert len(counts) == max(len_a, len_b) + 1
  assert np.all(np.abs(counts - expected) < 0.1 * expected), counts


def test_count_carries_known_answers():
  assert count_carries(Number.from_ints([128, 999, 5, 0]), Number.from_ints([367, 1, 5, 0])).tolist() == [1, 3, 1, 0]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(LENGTH, LENGTH), min_size=1, max_size=3), st.integers(0, 2**32))
def test_multiplication_matches_big_ints(lengths, seed):
  lengths = np.array(lengths)
  problem = build("multiplication").sample(np.random.default_rng(seed), lengths)
  a, b = problem.operands
  check_exact(a, lengths[:, 0])
  check_exact(b, lengths[:, 1])
  expected = [x * y for x, y in zip(a.to_ints(), b.to_ints())]
  check_exact(problem.answers[0], [len(str(v)) for v in expected])
  assert problem.answers[0].to_ints() == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 40)), min_size=1, max_size=4), st.booleans(),
       st.integers(0, 2**32))
def test_sorting_matches_python(lengths, equal_lengths, seed):
  lengths = np.array(lengths)
  problem = build("sorting", equal_lengths=equal_lengths).sample(np.random.default_rng(seed), lengths)
  count = lengths[:, 0]
  assert problem.layout == "list" and problem.prefix == "S"
  assert problem.operand_count_B.tolist() == problem.answer_count_B.tolist() == count.tolist()
  values = listed(problem.operands, count)
  assert listed(problem.answers, count) == [sorted(v) for v in values]
  for row, digits in zip(values, lengths[:, 1]):
    sizes = [len(str(v)) for v in row]
    assert all(s == digits for s in sizes) if equal_lengths else all(1 <= s <= digits for s in sizes)


@settings(max_examples=40, deadline=None)
@given(st.lists(LENGTH, min_size=1, max_size=4), st.integers(2, 10), st.integers(0, 2**32))
def test_bucket_sort_sorts_digit_strings(lengths, alphabet, seed):
  problem = build("bucket_sort", alphabet=alphabet).sample(np.random.default_rng(seed), np.array(lengths)[:, None])
  strings = problem.operands[0].to_strs()
  assert [len(s) for s in strings] == lengths
  assert all(set(s) <= set("0123456789"[:alphabet]) for s in strings)
  assert problem.answers[0].to_strs() == ["".join(sorted(s)) for s in strings]


def test_bucket_sort_default_alphabet_is_five():
  problem = build("bucket_sort").sample(np.random.default_rng(0), np.full((50, 1), 40))
  assert set("".join(problem.operands[0].to_strs())) == set("01234")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), LENGTH), min_size=1, max_size=4), st.integers(0, 2**32))
def test_counting_successor_counts(lengths, seed):
  lengths = np.array(lengths)
  problem = build("counting_successor").sample(np.random.default_rng(seed), lengths)
  start, end = problem.operands
  check_exact(start, lengths[:, 1])
  counts = lengths[:, 0].tolist()
  assert end.to_ints() == [a + c - 1 for a, c in zip(start.to_ints(), counts)]
  assert listed(problem.answers, counts) == [list(range(a, a + c)) for a, c in zip(start.to_ints(), counts)]


def test_counting_repeat_counts():
  problem = build("counting_repeat").sample(np.random.default_rng(0), np.array([[3], [1], [12]]))
  assert problem.layout == "repeat" and problem.op == "a"
  assert problem.operands[0].to_ints() == [3, 1, 12]
  assert listed(problem.answers, [3, 1, 12]) == [[1, 2, 3], [1], list(range(1, 13))]


@pytest.mark.parametrize("name", ["successor_hint", "predecessor_hint", "count_hint"])
@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 25), st.integers(1, 30)), min_size=1, max_size=4), st.integers(0, 2**32))
def test_hint_tasks_match_python(name, lengths, seed):
  lengths = np.array(lengths)
  problem = build(name).sample(np.random.default_rng(seed), lengths)
  count = lengths[:, 0]
  values = listed(problem.operands, count)
  queries = problem.query.to_ints()
  answers = problem.answers[0].to_ints()
  assert all(len(str(v)) == d for row, d in zip(values, lengths[:, 1]) for v in row)
  for row, q, answer in zip(values, queries, answers):
    assert q in row
    expected = {"successor_hint": lambda: min(v for v in row if v > q),
                "predecessor_hint": lambda: max(v for v in row if v < q),
                "count_hint": lambda: row.count(q)}[name]()
    assert answer == expected


def test_hint_tasks_redraw_lists_of_equal_values():
  """With one-digit pairs, a tenth of the lists are two equal values: they are redrawn."""
  problem = build("successor_hint").sample(np.random.default_rng(0), np.tile([2, 1], (300, 1)))
  rows = listed(problem.operands, [2] * 300)
  assert all(a != b for a, b in rows)
