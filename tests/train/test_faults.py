"""Fault injection: a run killed anywhere (in a step, during a checkpoint save, while appending
a metrics row, while rewriting a record file, or by a real SIGKILL) and resumed, again and
again, ends in the same parameters and metrics.jsonl (timing values aside) as an uninterrupted
run; after every kill, no row up to the latest checkpoint is lost."""

import collections
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from arithlab.train import checkpoint, loop, metrics, rundir
from arithlab.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Killed(Exception):
  """An injected fault: the process dies here."""


def latest_checkpoint(workdir: str) -> int:
  path = os.path.join(workdir, "checkpoints")
  return max((int(d) for d in os.listdir(path) if d.isdigit()), default=0) if os.path.isdir(path) else 0


def rows_to(workdir: str, step: int) -> list[dict]:
  return [{k: v for k, v in row.items() if k not in ("step_time", "tokens_per_s")}
          for row in rundir.read_rows(workdir) if row["step"] <= step]


@pytest.fixture
def faults(monkeypatch):
  """arm(kind, n): the n-th event of `kind` from now on raises Killed, leaving what a kill
  there leaves: "step" (a train step), "save" (a checkpoint save: a partial temporary
  directory), "metrics" (a metrics row: half a line), "rewrite" (an atomic rewrite of
  metrics.jsonl, config.json or run.json: the temporary file, not yet renamed)."""
  armed, counts = {}, collections.Counter()

  def fire(kind: str) -> bool:
    counts[kind] += 1
    return armed.get(kind) == counts[kind]

  def arm(kind: str, n: int) -> None:
    armed.clear()
    counts.clear()
    armed[kind] = n

  make_train_step = step_lib.make_train_step

  def killable_train_step(*args, **kwargs):
    train_step = make_train_step(*args, **kwargs)

    def run(state, batch):
      if fire("step"):
        raise Killed("step")
      return train_step(state, batch)

    return run

  save = checkpoint.Checkpointer.save

  def killable_save(self, step, state, metrics=None, extra=None):
    if fire("save"):
      partial = os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp", "state")
      os.makedirs(partial, exist_ok=True)
      with open(os.path.join(partial, "part"), "wb") as f:
        f.write(b"\0" * 100)
      raise Killed("save")
    save(self, step, state, metrics, extra)

  write = metrics.MetricsWriter.write

  def killable_write(self, step, row):
    if fire("metrics"):
      with open(self.path, "a") as f:
        f.write('{"step": %d, "lo' % step)
      raise Killed("metrics")
    write(self, step, row)

  replace = os.replace

  def killable_replace(src, dst):
    if os.path.basename(dst) in (rundir.METRICS, rundir.CONFIG, rundir.RUN) and fire("rewrite"):
      raise Killed("rewrite")
    replace(src, dst)

  monkeypatch.setattr(step_lib, "make_train_step", killable_train_step)
  monkeypatch.setattr(checkpoint.Checkpointer, "save", killable_save)
  monkeypatch.setattr(metrics.MetricsWriter, "write", killable_write)
  monkeypatch.setattr(os, "replace", killable_replace)
  return arm


def test_killed_anywhere_and_resumed_equals_the_uninterrupted_run(tiny_cfg, tmp_path, faults, same_run):
  tiny_cfg.train.steps = 10  # log_every 3 divides no checkpoint step but 6
  whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")
  loop.train(tiny_cfg, whole)
  rng = random.Random(16)
  kills = 0
  for kind in ["step", "save", "metrics", "rewrite", "step", "save", "rewrite", "metrics"]:
    faults(kind, rng.randint(1, 3))
    try:
      loop.train(tiny_cfg, pieces)
    except Killed:
      kills += 1
      step = latest_checkpoint(pieces)
      assert rows_to(pieces, step) == rows_to(whole, step), (kind, step)  # nothing lost
  faults("none", 1)
  loop.train(tiny_cfg, pieces)
  assert kills >= 6
  same_run(tiny_cfg, whole, pieces)


def test_sigkill_and_resume_equals_the_uninterrupted_run(tiny_cfg, tmp_path, same_run):
  whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")
  overrides = ["--config.model.d_model=16", "--config.model.d_ff=32", "--config.model.heads=2",
               "--config.model.layers=1", "--config.train.steps=4", "--config.train.batch_size=8",
               "--config.train.warmup_steps=1", "--config.train.log_every=3", "--config.eval.every=0",
               "--config.eval.n_per_cell=2", "--config.eval.batch_size=18", "--config.checkpoint.every=2",
               "--config.checkpoint.keep=3"]
  proc = subprocess.Popen([sys.executable, "-m", "arithlab.main", "--config=experiments/quickstart.py:smoke",
                           f"--workdir={pieces}", *overrides], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  deadline = time.time() + 240
  while not os.path.isdir(os.path.join(pieces, "checkpoints", "2")) and proc.poll() is None:
    assert time.time() < deadline, "no checkpoint within 240 s"
    time.sleep(0.05)
  time.sleep(random.Random(16).uniform(0, 0.3))
  proc.send_signal(signal.SIGKILL)
  _, err = proc.communicate()
  assert proc.returncode in (-signal.SIGKILL, 0), err[-3000:]
  loop.train(tiny_cfg, whole)
  loop.train(tiny_cfg, pieces)  # takes over the killed process's lock
  same_run(tiny_cfg, whole, pieces)
