"""Grid cells and the train/eval hash split: exact lengths, determinism, real disjointness."""

import numpy as np
import pytest

from data_gen import grid, tasks
from data_gen.text import Number, Problem

ADD = tasks.build("addition")


def problem_keys(problem: Problem) -> set[tuple[int, ...]]:
  """Each row's operands as a tuple of ints (the identity of an addition problem)."""
  return set(zip(*(number.to_ints() for number in problem.operands)))


def test_rng_streams_differ_by_domain_and_key():
  draw = lambda *key: grid.derive_rng(7, *key).integers(0, 2**62, 4).tolist()
  assert draw(grid.TRAIN_DOMAIN, 3, 0) == draw(grid.TRAIN_DOMAIN, 3, 0)
  streams = [draw(grid.TRAIN_DOMAIN, 3, 0), draw(grid.EVAL_DOMAIN, 3, 0), draw(grid.TRAIN_DOMAIN, 4, 0),
             draw(grid.TRAIN_DOMAIN, 3, 1)]
  assert len({tuple(s) for s in streams}) == len(streams)


def test_hash_depends_on_the_problem_only():
  a = Problem((Number.from_ints([12, 5, 0]), Number.from_ints([7, 123, 0])), (Number.from_ints([19, 128, 0]),), "+")
  # The same problems with wider digit arrays (zeros beyond the lengths) and reordered rows.
  wide = lambda n: Number(np.pad(n.digits_BxW, ((0, 0), (0, 4))), n.length_B)
  b = Problem(tuple(wide(n) for n in a.operands), a.answers, "+").take(np.array([2, 0, 1]))
  np.testing.assert_array_equal(grid.problem_hash(a)[[2, 0, 1]], grid.problem_hash(b))
  assert len(set(grid.problem_hash(a).tolist())) == 3


def test_hash_ignores_unwritten_list_entries():
  items = lambda last: (Number.from_ints([5, 5]), Number.from_ints([3, 3]), Number.from_ints([last, last]))
  count = np.array([2, 3], np.int32)
  one = Problem(items(1), items(1), " ", layout="list", operand_count_B=count, answer_count_B=count)
  two = Problem(items(9), items(9), " ", layout="list", operand_count_B=count, answer_count_B=count)
  h1, h2 = grid.problem_hash(one), grid.problem_hash(two)
  assert h1[0] == h2[0] and h1[1] != h2[1]


def test_held_out_share_matches_holdout():
  problem = ADD.sample(np.random.default_rng(0), np.full((20000, 2), 6))
  for holdout in (0.125, 0.5):
    assert abs(grid.held_out(problem, holdout).mean() - holdout) < 0.015


def test_training_and_eval_are_disjoint_on_tiny_lengths():
  """1- and 2-digit operands: training sees most of the 100..8100 problems of each cell, and
  still never an evaluation problem of a cell inside its length box."""
  ranges = ((1, 2), (1, 2))
  train = set()
  for step in range(40):
    rng = grid.derive_rng(0, grid.TRAIN_DOMAIN, step, 0)
    problem = grid.sample_training(ADD, rng, ranges, 512, holdout=0.125)
    assert problem.batch == 512 and not grid.held_out(problem, 0.125).any()
    train |= problem_keys(problem)
  assert len(train) > 5000
  evaluated = set()
  for cell in grid.cells(ranges):
    rng = grid.derive_rng(0, grid.EVAL_DOMAIN, *cell)
    problem = grid.sample_cell(ADD, cell, 100, rng=rng, holdout=0.125, train_ranges=ranges)
    assert grid.held_out(problem, 0.125).all()
    assert [n.length_B.tolist() for n in problem.operands] == [[cell[0]] * 100, [cell[1]] * 100]
    evaluated |= problem_keys(problem)
  assert len(evaluated) > 100 and not train & evaluated


def test_cell_outside_the_box_is_not_filtered():
  rng = grid.derive_rng(0, grid.EVAL_DOMAIN, 3, 4)
  problem = grid.sample_cell(ADD, (3, 4), 400, rng=rng, holdout=0.125, train_ranges=((1, 2), (1, 2)))
  assert 0 < grid.held_out(problem, 0.125).mean() < 0.3
  assert problem.operands[0].length_B.tolist() == [3] * 400


def test_a_cell_without_held_out_problems_raises():
  """counting_repeat has one problem per length: a length is wholly held out or not."""
  task = tasks.build("counting_repeat")
  one = lambda n: task.sample(np.random.default_rng(0), np.array([[n]]))
  kept = next(n for n in range(1, 100) if not grid.held_out(one(n), 0.125)[0])
  with pytest.raises(ValueError, match="holdout=0"):
    grid.sample_cell(task, (kept,), 4, rng=np.random.default_rng(0), holdout=0.125, train_ranges=((1, 100),))
  gone = next(n for n in range(1, 100) if grid.held_out(one(n), 0.125)[0])
  with pytest.raises(ValueError, match="held out"):
    grid.sample_training(task, np.random.default_rng(0), ((gone, gone),), 4, holdout=0.125)


def test_cells_and_box():
  assert grid.cells(((1, 2), (3, 3))) == [(1, 3), (2, 3)]
  assert grid.in_box((2, 3), ((1, 2), (3, 3))) and not grid.in_box((2, 4), ((1, 2), (3, 3)))


def test_sample_cell_checks_the_axes():
  with pytest.raises(ValueError, match="one length per axis"):
    grid.sample_cell(ADD, (3,), 2, rng=np.random.default_rng(0), holdout=0.1, train_ranges=((1, 2), (1, 2)))


def test_joining_batches_of_different_list_lengths():
  """Redraw rounds join batches whose lists have different longest counts."""
  task = tasks.build("counting_successor")
  short = task.sample(np.random.default_rng(0), np.array([[2, 3], [1, 3]]))
  long = task.sample(np.random.default_rng(1), np.array([[5, 2]]))
  joined = grid.concat(short, long)
  assert joined.batch == 3 and len(joined.answers) == 5
  np.testing.assert_array_equal(joined.answer_count_B, [2, 1, 5])
  for row, part, index in [(0, short, 0), (1, short, 1), (2, long, 0)]:
    count = part.answer_count_B[index]
    assert [n.to_ints()[row] for n in joined.answers[:count]] == [n.to_ints()[index] for n in part.answers[:count]]
  np.testing.assert_array_equal(grid.problem_hash(joined), np.concatenate([grid.problem_hash(short), grid.problem_hash(long)]))
