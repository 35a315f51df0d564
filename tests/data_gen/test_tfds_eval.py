"""Frozen TFDS array_record eval sets: round trip, no overwrite, corruption detected, no TensorFlow."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

from data_gen import pipeline, tfds_eval

CELLS = [(1, 1), (2, 3), (5, 1)]


def config(**overrides):
  cfg = pipeline.default_data_config()
  cfg.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.update(overrides)
  return cfg


def files(path):
  return {name: open(os.path.join(path, name), "rb").read() for name in sorted(os.listdir(path))}


def assert_grids_equal(a, b):
  assert list(a) == list(b)
  for cell in a:
    for key in a[cell]:
      assert a[cell][key].dtype == b[cell][key].dtype, (cell, key)
      np.testing.assert_array_equal(a[cell][key], b[cell][key], err_msg=f"{cell} {key}")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("evalset"))
  tfds_eval.write_eval_set(config(), CELLS, 20, data_dir, seed=5)
  return data_dir


def test_round_trip_gives_the_sampled_grid(written):
  assert_grids_equal(tfds_eval.read_eval_set(written), pipeline.eval_grid(config(), CELLS, 20, seed=5))
  assert_grids_equal(tfds_eval.read_eval_set(written, config(max_len=64, loss="all")),
                     tfds_eval.read_eval_set(written))
  with pytest.raises(ValueError, match=r"fields \['tokenizer'\] differ"):
    tfds_eval.read_eval_set(written, config(tokenizer="chunk2_l2r"))
  stored = tfds_eval.read_eval_config(written)
  assert stored.n_per_cell == 20 and stored.seed == 5 and stored.data_config.format == "reverse_answer+dollar"


def test_multi_level_positions_round_trip(tmp_path):
  cfg = config(format="random_spaces+reverse_answer", positions="coupling",
               position_options={"max_pos": 16, "levels": 2, "max_pos_number": 4})
  tfds_eval.write_eval_set(cfg, [(2, 2), (3, 1)], 6, str(tmp_path))
  grid = tfds_eval.read_eval_set(str(tmp_path))
  assert grid[(2, 2)]["answer_positions"].ndim == 3
  assert_grids_equal(grid, pipeline.eval_grid(cfg, [(2, 2), (3, 1)], 6, seed=0))


def test_an_existing_set_is_never_overwritten(written):
  path = tfds_eval.dataset_path(written)
  before = files(path)
  assert tfds_eval.write_eval_set(config(), CELLS, 20, written, seed=5) == path
  for change in [dict(n_per_cell=21), dict(seed=6), dict(cells=CELLS[:2]), dict(cfg=config(tokenizer="chunk2_r2l"))]:
    args = dict(cfg=config(), cells=CELLS, n_per_cell=20, seed=5) | change
    with pytest.raises(ValueError, match="refusing to overwrite"):
      tfds_eval.write_eval_set(args["cfg"], args["cells"], args["n_per_cell"], written, seed=args["seed"])
  assert files(path) == before


def corrupt_copy(written, tmp_path, damage):
  data_dir = str(tmp_path / "copy")
  src, dst = tfds_eval.dataset_path(written), tfds_eval.dataset_path(data_dir)
  os.makedirs(dst)
  for name, content in files(src).items():
    with open(os.path.join(dst, name), "wb") as f:
      f.write(damage(name, content))
  return data_dir, dst


@pytest.mark.parametrize("damage", [
    lambda name, data: data[: len(data) // 3] if name.endswith("len_2_3.array_record-00000-of-00001") else data,
    lambda name, data: data[:200] + bytes([data[200] ^ 0xFF]) + data[201:] if "len_1_1.array" in name else data,
    lambda name, data: b"{not json" if name == "metadata.json" else data,
    lambda name, data: json.dumps(dict(json.loads(data), n_per_cell=19)).encode() if name == "metadata.json" else data,
], ids=["truncated", "bit_flip", "bad_metadata", "wrong_count"])
def test_a_corrupt_set_raises_naming_its_path_and_deletes_nothing(written, tmp_path, damage):
  data_dir, path = corrupt_copy(written, tmp_path, damage)
  before = files(path)
  with pytest.raises(ValueError, match="corrupt") as error:
    tfds_eval.read_eval_set(data_dir)
  assert path in str(error.value)
  with pytest.raises(ValueError):
    tfds_eval.write_eval_set(config(), CELLS, 20, data_dir, seed=4)
  assert files(path) == before


def test_missing_set(tmp_path):
  with pytest.raises(ValueError, match="no eval set"):
    tfds_eval.read_eval_set(str(tmp_path))


def test_tensorflow_is_neither_installed_nor_imported(written):
  tfds_eval.read_eval_set(written)
  assert importlib.util.find_spec("tensorflow") is None
  assert "tensorflow" not in sys.modules


def write_without_final_mask(monkeypatch, cfg, data_dir):
  """A set as written before the eval layout had final_mask: five fields, no "fields" entry."""
  with monkeypatch.context() as patch:
    patch.setattr(tfds_eval, "FIELDS", tfds_eval.FIELDS_BEFORE_FINAL_MASK)
    tfds_eval.write_eval_set(cfg, CELLS[:2], 4, data_dir, seed=5)
  meta_path = os.path.join(tfds_eval.dataset_path(data_dir), "metadata.json")
  with open(meta_path) as f:
    metadata = json.load(f)
  del metadata["fields"]
  with open(meta_path, "w") as f:
    json.dump(metadata, f)


def test_final_mask_round_trips_and_older_sets_read_as_whole_answer_final(monkeypatch, tmp_path):
  cfg = config(format="scratchpad_simple")
  tfds_eval.write_eval_set(cfg, CELLS[:2], 4, str(tmp_path / "new"), seed=5)
  grid = tfds_eval.read_eval_set(str(tmp_path / "new"))
  assert_grids_equal(grid, pipeline.eval_grid(cfg, CELLS[:2], 4, seed=5))
  assert not grid[(2, 3)]["final_mask"].all()  # the scratchpad is not final

  write_without_final_mask(monkeypatch, config(), str(tmp_path / "old"))
  old = tfds_eval.read_eval_set(str(tmp_path / "old"))
  fresh = pipeline.eval_grid(config(), CELLS[:2], 4, seed=5)
  assert_grids_equal(old, fresh)  # without a scratchpad the whole answer is final either way
  write_without_final_mask(monkeypatch, cfg, str(tmp_path / "old_scratchpad"))
  with pytest.raises(ValueError, match="predates final-answer scoring"):
    tfds_eval.read_eval_set(str(tmp_path / "old_scratchpad"))
