"""Bad configs fail at start-up with a ValueError naming the field and what to change."""

import os
import pathlib
import subprocess
import sys

import pytest

from arithlab import config
from arithlab.train import loop

REPO = pathlib.Path(__file__).resolve().parents[2]


def base():
  cfg = config.default_config()
  cfg.data.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.eval.lengths = {"len_0": (1, 4), "len_1": (1, 4)}
  cfg.model.update(layers=1, d_model=16, heads=2, d_ff=32, vocab_size=107, max_len=64)
  cfg.train.update(steps=4, batch_size=8, warmup_steps=1, log_every=2)
  cfg.eval.update(n_per_cell=4, batch_size=8)
  return cfg


def test_the_default_and_base_configs_are_valid():
  config.validate(base(), device_count=1)
  cfg = config.default_config()
  config.validate(cfg, device_count=1)


@pytest.mark.parametrize("change, devices, message", [
    (lambda c: c.mesh.update(data=3), 8, r"mesh.data=3, mesh.fsdp=1, mesh.tensor=1"),
    (lambda c: c.mesh.update(data=2, fsdp=2), 2, r"the mesh needs 4 devices but there are 2"),
    (lambda c: c.train.update(batch_size=12), 8, r"train.batch_size=12 .* use a multiple of 8"),
    (lambda c: c.train.update(grad_accum=3), 1, r"train.batch_size=8 .* train.grad_accum=3"),
    (lambda c: c.eval.update(batch_size=6), 4, r"eval.batch_size=6 .* multiple of 4"),
    (lambda c: c.model.update(vocab_size=50), 1, r"model.vocab_size=50 .* set model.vocab_size=107"),
    (lambda c: c.train.update(warmup_steps=4), 1, r"train.warmup_steps=4 must be below train.steps=4"),
    (lambda c: c.train.update(steps=0), 1, r"train.steps=0 must be >= 1"),
    (lambda c: c.train.update(lr=0.0), 1, r"train.lr=0.0"),
    (lambda c: setattr(c.eval, "lengths", {"a": (1, 4), "b": (1, 4)}), 1, r"eval.lengths=.*\['len_0', 'len_1'\]"),
    (lambda c: setattr(c.eval, "lengths", {"len_0": (3, 2), "len_1": (1, 4)}), 1, r"eval.lengths=.*1 <= min <= max"),
    (lambda c: c.checkpoint.update(best_metric="loss"), 1, r"checkpoint.best_metric='loss' unknown"),
    (lambda c: setattr(c.eval, "lengths", {"len_0": (1, 3), "len_1": (1, 2)}), 1,
     r"checkpoint.best_metric='val/exact_ood' needs eval cells outside data.train_lengths"),
    (lambda c: c.checkpoint.update(best_metric="eval/exact_id"), 1,
     r"best_metric='eval/exact_id' is a test-grid score; .*validation set: use 'val/exact_id'"),
    (lambda c: c.eval.update(val_n_per_cell=0), 1, r"checkpoint.keep_best needs a validation set.*val_n_per_cell"),
    (lambda c: c.eval.update(min_per_length=-1), 1, r"eval.min_per_length=-1 must be >= 0"),
    (lambda c: c.model.update(norm="batchnorm"), 1, r"model.norm='batchnorm' unknown"),
    (lambda c: c.model.update(heads=0), 1, r"model.heads=0 must be >= 1"),
    (lambda c: c.mesh.update(data=2, fsdp=2, tensor=2), 8,
     r"model.vocab_size=107 does not divide over the mesh: .*\('vocab'\).* split 2 ways \(mesh.tensor=2\); "
     r"set model.vocab_size=108"),
    (lambda c: (c.model.update(vocab_size=108), c.mesh.update(data=2, tensor=4)), 8,
     r"model.heads=2 does not divide .* split 4 ways \(mesh.tensor=4\); set model.heads=4"),
    (lambda c: c.data.update(train_lengths={"len_0": (1, 3), "len_1": (1, 100000)}), 1,
     r"data.train_lengths.len_1 = \(1, 100000\) exceeds the supported maximum length 10000"),
    (lambda c: setattr(c.eval, "lengths", {"len_0": (1, 4), "len_1": (1, 100000)}), 1,
     r"eval.lengths=.*<= 10000 \(the supported maximum\)"),
    (lambda c: c.model.update(causal=False), 1, r"model.causal=False: .* set model.causal=True"),
    (lambda c: c.data.update(loss="most"), 1, r"data.loss 'most' unknown"),
    (lambda c: c.eval.update(rope_scaling="linear"), 1, r"eval.rope_scaling='linear': .*linear:<s>"),
    (lambda c: (c.model.update(encoding="alibi"), c.eval.update(rope_scaling="linear:2")), 1,
     r"eval.rope_scaling='linear:2': model.encoding='alibi' takes no RoPE scaling; .*rope"),
])
def test_bad_configs_name_the_field(change, devices, message):
  cfg = base()
  change(cfg)
  with pytest.raises(ValueError, match=message):
    config.validate(cfg, device_count=devices)


def test_a_mesh_that_divides_every_parameter_is_valid():
  cfg = base()
  cfg.model.vocab_size = 108
  cfg.mesh.update(data=2, fsdp=2, tensor=2)
  config.validate(cfg, device_count=8)


def test_an_unknown_config_flag_lists_the_fields_of_its_section(tmp_path):
  for flag, listed in [("--config.train.bogus=1", "its section has: b1, b2, batch_size, end_lr_ratio"),
                       ("--config.trian.steps=1", "'trian' is not a config section; the config has: checkpoint")]:
    result = subprocess.run([sys.executable, "-m", "arithlab.main", "--config=experiments/quickstart.py:smoke",
                             f"--workdir={tmp_path / 'run'}", flag], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode != 0 and listed in result.stderr and "Traceback" not in result.stderr, result.stderr
  assert not (tmp_path / "run").exists()


def test_process_count_must_divide_the_data_shards():
  with pytest.raises(ValueError, match=r"data.num_shards=1 must be a multiple of the process count \(2\)"):
    config.validate(base(), device_count=2, process_count=2)


def test_eval_lengths_beyond_the_encoding_fail_before_training(tmp_path):
  cfg = base()
  cfg.model.update(encoding="learned", max_len=16)  # the 4+4-digit eval cells need position ids >= 16
  with pytest.raises(ValueError, match=r"position id \d+ exceeds the limit of encoding 'learned'"):
    loop.train(cfg, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints") and not os.path.exists(tmp_path / "metrics.jsonl")


def test_cell_counts_raise_short_lengths_to_min_per_length():
  cfg = base()  # 4 x 4 grid: length n (the largest of a cell's lengths) has 2n - 1 cells
  assert set(config.cell_counts(cfg).values()) == {4}
  cfg.eval.min_per_length = 30
  counts = config.cell_counts(cfg)
  assert counts[(1, 1)] == 30 and counts[(1, 2)] == counts[(2, 2)] == 10 and counts[(3, 1)] == 6
  assert counts[(4, 4)] == 5 and counts[(1, 4)] == 5  # 7 cells of length 4: ceil(30 / 7)
  for n in range(1, 5):
    assert sum(c for cell, c in counts.items() if max(cell) == n) >= 30
