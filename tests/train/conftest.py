"""A persistent XLA compilation cache for this test session (a fresh temporary directory).

The train tests run the same tiny programs many times (whole runs, resumed runs, restores,
subprocess runs of `arithlab.main`); with the cache each program compiles once per session,
which more than halves the CPU time of these tests. It is set when pytest collects this
folder, before anything compiles, and exported so that subprocesses share it.

Also the fixtures of the run-directory tests: a tiny run config and a check that two runs ended
identically.
"""

import atexit
import importlib.util
import os
import pathlib
import shutil
import tempfile

import jax
import numpy as np
import pytest

from arithlab.train import checkpoint, mesh, optim, rundir, step

REPO = pathlib.Path(__file__).resolve().parents[2]

_CACHE = tempfile.mkdtemp(prefix="arithlab-test-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
_SETTINGS = {
    "jax_compilation_cache_dir": _CACHE,
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}
for _name, _value in _SETTINGS.items():
  jax.config.update(_name, _value)
  os.environ[_name.upper()] = str(_value)


@pytest.fixture
def tiny_cfg():
  """The quickstart's :smoke run cut to 4 steps of a width-16 model, checkpoints every 2 steps
  (the last 3 kept), one evaluation at the end on 2 problems per cell."""
  spec = importlib.util.spec_from_file_location("quickstart", REPO / "experiments" / "quickstart.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config("smoke")
  cfg.model.update(d_model=16, d_ff=32, heads=2, layers=1)
  cfg.train.update(steps=4, batch_size=8, warmup_steps=1, log_every=3)
  cfg.eval.update(every=0, n_per_cell=2, batch_size=18)
  cfg.checkpoint.update(every=2, keep=3)
  return cfg


def final_state(cfg, workdir: str):
  """The train state of the run's latest checkpoint."""
  _, template, _ = step.init(cfg, mesh.make_mesh(cfg.mesh), optim.make_optimizer(cfg.train))
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint, cfg.checkpoint.best_metric)
  try:
    return ckpt.restore(ckpt.latest_step(), template)
  finally:
    ckpt.close()


def rows(workdir: str) -> list[dict]:
  """metrics.jsonl without its timing values (step_time, tokens_per_s): what must not change
  when a run is killed and resumed."""
  return [{k: v for k, v in row.items() if k not in ("step_time", "tokens_per_s")}
          for row in rundir.read_rows(workdir)]


@pytest.fixture
def same_run():
  """assert_same(cfg, a, b): the runs in directories a and b ended in bitwise equal train states
  and metrics.jsonl rows (timing values aside)."""
  def assert_same(cfg, a: str, b: str) -> None:
    x, y = final_state(cfg, a), final_state(cfg, b)
    for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
      np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert rows(a) == rows(b)

  return assert_same
