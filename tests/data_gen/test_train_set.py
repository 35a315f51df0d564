"""A fixed training set of exactly N distinct problems: composition, epochs, disjointness, storage."""

import collections
import importlib.util
import os

import numpy as np
import pytest

from data_gen import formats, grid, pipeline, show, tfds_train
from data_gen.tasks import digits as dg
from data_gen.tasks.addition import count_carries
from data_gen.text import Number, Problem

SPEC = importlib.util.spec_from_file_location(
    "lee2023", os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "lee2023.py"))
LEE = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(LEE)


def lee(n, **overrides):
  """Lee et al.'s setup: 1-3 digit addition, carry-balanced set of n in Lee's composition."""
  cfg = pipeline.default_data_config()
  cfg.update(task="addition", format="plain")
  cfg.task_options = {"balanced_carries": True}
  cfg.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.train_set.update(size=n, parts=LEE.composition(n), balanced=True)
  cfg.update(overrides)
  return cfg


def fixed(cfg):
  return pipeline.build(cfg).sources[0].fixed


def texts(cfg, batch):
  return pipeline.build(cfg).tokenizer.decode(batch["tokens"])


def plain(problem):
  return ["<bos>" + s + "<eos>" for s in formats.render(problem, "plain").strings()]


@pytest.mark.parametrize("n", [500, 3000])
def test_lee_set_has_exactly_n_distinct_problems_in_lee_composition(n):
  problem = fixed(lee(n))
  assert problem.batch == n
  assert len(set(plain(problem))) == n and len(set(grid.problem_hash(problem).tolist())) == n
  a, b = problem.operands
  longest = np.maximum(a.length_B, b.length_B)
  every = np.array([(x, y) for x in range(10) for y in range(10)])  # the 100 one-digit pairs
  operands = (Number.from_array(every[:, 0]), Number.from_array(every[:, 1]))
  trainable = 100 - int(grid.held_out(Problem(operands, (dg.add(operands),), "+"), 0.125).sum())
  assert 80 < trainable < 100
  assert np.sum(longest == 1) == trainable
  assert np.sum(longest == 2) == 900 * n // 10**4
  assert np.sum(longest == 3) == n - trainable - 900 * n // 10**4
  assert np.bincount(count_carries(a, b), minlength=4).tolist() == [n // 4] * 4


def test_set_is_disjoint_from_every_evaluation_cell():
  cfg = lee(2000)
  problem = fixed(cfg)
  assert not grid.held_out(problem, cfg.holdout).any()
  ours = set(plain(problem))
  build = pipeline.build(cfg)
  for cell in grid.cells([(1, 3), (1, 3)]):
    rng = grid.derive_rng(0, grid.EVAL_DOMAIN, *cell)
    evaluated = grid.sample_cell(build.sources[0].task, cell, 200, rng=rng, holdout=cfg.holdout,
                                 train_ranges=build.sources[0].ranges)
    assert not ours & set(plain(evaluated)), cell


def test_each_problem_once_per_epoch_and_epochs_reshuffle():
  cfg = lee(192, num_shards=2)  # 32 rows a step: one epoch = 6 steps
  rows = [texts(cfg, pipeline.sample_batch(cfg, seed=1, step=t, batch_size=32)) for t in range(12)]
  first, second = sum(rows[:6], []), sum(rows[6:], [])
  assert sorted(first) == sorted(second) == sorted(plain(fixed(cfg)))
  assert first != second


def test_step_batch_is_stateless_across_history_and_process_splits():
  cfg = lee(200, num_shards=4, pad_to_max_len=True, max_len=24, bucket=8)
  pipe = pipeline.build(cfg)
  alone = pipeline.sample_built(pipe, seed=2, step=23, process_index=0, process_count=1, batch_size=32)
  for t in range(23):
    pipeline.sample_built(pipe, seed=2, step=t, process_index=0, process_count=1, batch_size=32)
  again = pipeline.sample_built(pipe, seed=2, step=23, process_index=0, process_count=1, batch_size=32)
  split = [pipeline.sample_built(pipeline.build(cfg), seed=2, step=23, process_index=p, process_count=2,
                                 batch_size=32) for p in range(2)]
  for key in alone:
    np.testing.assert_array_equal(alone[key], again[key])
    np.testing.assert_array_equal(alone[key], np.concatenate([part[key] for part in split]))


def test_set_depends_on_its_seed_only_and_the_default_stays_fresh():
  assert plain(fixed(lee(300))) == plain(fixed(lee(300)))
  other = lee(300)
  other.train_set.seed = 1
  assert set(plain(fixed(lee(300)))) != set(plain(fixed(other)))
  assert pipeline.build(pipeline.default_data_config()).sources[0].fixed is None


def test_general_task_with_hints_fixes_the_main_task_only():
  cfg = pipeline.default_data_config()
  cfg.update(task="sorting", format="plain", hints="successor_hint:0.5")
  cfg.train_lengths = {"count": (2, 4), "digits": (1, 2)}
  cfg.train_set.update(size=40, parts="10@count=2:2")
  problem = fixed(cfg)
  assert problem.batch == 40 and len(set(formats.render(problem, "plain").strings())) == 40
  assert np.sum(problem.operand_count_B == 2) == 10
  pipe = pipeline.build(cfg)
  decoded = pipe.tokenizer.decode(pipeline.sample_batch(cfg, seed=0, step=0, batch_size=16)["tokens"])
  main = [row.replace("<task:0>", "") for row in decoded if "<task:0>" in row]
  assert len(main) == 8 and set(main) <= set(plain(problem))


@pytest.mark.parametrize("change, message", [
    ({"parts": "5@1:1"}, "need data.train_set.size > 0"),
    ({"size": 50, "parts": "5@1:4"}, "inside data.train_lengths"),
    ({"size": 50, "parts": "60@1:2"}, "above data.train_set.size"),
    ({"size": 50, "parts": "x@1:2"}, "must be 'count@lo:hi'"),
])
def test_bad_train_set_configs_raise_naming_the_field(change, message):
  cfg = lee(0)
  cfg.train_set.update(parts="", balanced=False)
  cfg.train_set.update(change)
  with pytest.raises(ValueError, match=message):
    pipeline.build(cfg)


def test_a_size_above_the_distinct_training_problems_raises():
  cfg = lee(88, train_lengths={"len_0": (1, 1), "len_1": (1, 1)})  # 87 one-digit pairs are not held out
  cfg.train_set.update(parts="", balanced=False)
  with pytest.raises(ValueError, match="found only 87 distinct training problems"):
    pipeline.build(cfg)
  cfg.train_set.parts = "80@1:1"  # the rest has no cell left outside the part's box
  with pytest.raises(ValueError, match="found only 80 distinct training problems"):
    pipeline.build(cfg)
  cfg.train_set.parts = ""
  cfg.train_set.size = 87
  assert pipeline.build(cfg).sources[0].fixed.batch == 87


def test_balancing_needs_a_task_with_strata():
  cfg = pipeline.default_data_config()
  cfg.update(task="sorting", format="plain")
  cfg.train_lengths = {"count": (2, 4), "digits": (1, 2)}
  cfg.train_set.update(size=20, balanced=True)
  with pytest.raises(ValueError, match="defines no strata"):
    pipeline.build(cfg)


def test_lee_samples_axis_no_longer_repeats_a_few_problems():
  """The reproduction of the defect: at N = 3000, 40 steps of 64 rows (< one epoch) never
  repeat a problem (with data.holdout = 1 - N/10^6 one problem took 29% of the rows)."""
  point = next(p for p in LEE.samples_axis([3000]))
  cfg = lee(3000)
  cfg.train_set.update({k.split(".")[-1]: v for k, v in point.overrides.items()})
  pipe = pipeline.build(cfg)
  counts = collections.Counter(s for t in range(40) for s in pipe.tokenizer.decode(
      pipeline.sample_built(pipe, seed=0, step=t, process_index=0, process_count=1, batch_size=64)["tokens"]))
  assert counts.most_common(1)[0][1] == 1


def test_written_set_reads_back_identically(tmp_path):
  cfg = lee(300)
  path = tfds_train.write_train_set(cfg, str(tmp_path))
  assert tfds_train.write_train_set(cfg, str(tmp_path)) == path
  problem, text = tfds_train.read_train_set(str(tmp_path), cfg)
  assert tfds_train.checksum(problem) == tfds_train.checksum(fixed(cfg))
  assert plain(problem) == plain(fixed(cfg)) and text[0] == plain(problem)[0][5:-5]
  other = lee(300)
  other.train_set.seed = 4
  with pytest.raises(ValueError, match="refusing to overwrite"):
    tfds_train.write_train_set(other, str(tmp_path))
  with pytest.raises(ValueError, match=r"fields \['train_set'\] differ"):
    tfds_train.read_train_set(str(tmp_path), other)


def test_show_prints_the_fixed_set(capsys):
  show.main(["--format=plain", "--lengths=1:3", "--task_options={\"balanced_carries\": true}",
             "--train_set_size=300", "--train_set_parts=100@1:1;27@1:2", "--train_set_balanced", "-n", "2"])
  out = capsys.readouterr().out
  assert out.startswith("fixed training set: 300 distinct problems, first in set order: ")
