"""Each benchmark script runs end to end in its `--smoke` mode and prints a well-formed table.

Nothing is timed here: the tests check the structure of the rows, that the PyTorch comparison
is skipped cleanly when torch is absent, and that both decoders produce the same tokens.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def repo_root_on_path(monkeypatch):
  """`benchmarks` is a folder of scripts at the repository root, not an installed package."""
  monkeypatch.syspath_prepend(ROOT)


def test_train_step_without_torch_skips_the_comparison(monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
  from benchmarks import train_step

  table = train_step.main(["--smoke", "--cores=0", "--dtypes=float32", "--profile"])
  out = capsys.readouterr().out
  assert "the PyTorch comparison is skipped" in out
  (row,) = table
  assert len(row) == len(train_step.HEADER)
  assert (row[1], row[2], row[4]) == ("float32", "2 x 8", "arithlab (jax.jit)")
  assert row[8] == "n/a (CPU)" and row[9] == "-"  # no MFU on a CPU, no torch to compare with
  assert float(row[5]) > 0 and float(row[6].replace(",", "")) > 0
  assert "| model | dtype |" in out
  assert "| smoke | float32 | arithlab (jax.jit) |" in out  # the --profile table


def test_train_step_beside_torch(capsys):
  pytest.importorskip("torch")
  from benchmarks import train_step

  table = train_step.main(["--smoke", "--cores=0", "--dtypes=bfloat16", "--no-compile"])
  assert [row[4] for row in table] == ["arithlab (jax.jit)", "torch eager"]
  assert table[0][3] == table[1][3]  # the same parameter count: the same shape
  assert table[0][9].endswith("x") and table[1][9] == "1.00x"


def test_train_step_flops_count_attention():
  from benchmarks import common

  cfg = common.model_config("lee", "float32")
  n = 10_000_000
  assert common.train_flops_per_token(cfg, n, 256) == 6 * (n - 256 * 384) + 12 * 6 * 256 * 384
  assert common.peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.4e12
  assert common.peak_flops("cpu", "float32") is None


def test_decode_cached_matches_recompute(capsys):
  from benchmarks import decode

  (row,) = decode.main(["--smoke", "--cores=0"])
  assert len(row) == len(decode.HEADER)
  assert row[3] == "3+3" and row[4] == "10 + 6"  # BOS $ddd+ddd= ; 3-4 reversed digits, $, EOS
  assert row[10] == "yes"
  assert row[9].endswith("x")


def test_eval_grid_runs_one_shape_and_buckets_side_by_side(capsys):
  from benchmarks import eval_grid

  one, buckets = eval_grid.main(["--smoke", "--cores=0"])
  assert [one[0], buckets[0]] == ["one shape", "buckets"]
  assert one[3] == buckets[3] == "18" and one[4] == "1" and one[-1] == "1.00x"
  assert "same exact match per cell both ways: True" in capsys.readouterr().out
