"""The run directory as a record: one writer at a time (a stale lock aside), a resume only of
the same run, nothing written before every check, a corrupt latest checkpoint skipped and kept."""

import copy
import json
import os
import socket
import subprocess
import sys

import pytest

from arithlab import sweep
from arithlab.train import loop, rundir


def snapshot(directory) -> dict[str, bytes]:
  """relative path -> bytes of every file under directory."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        out[os.path.relpath(os.path.join(root, name), directory)] = f.read()
  return out


def attempts(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, rundir.RUN)) as f:
    return json.load(f)["attempts"]


def test_a_second_writer_is_refused_naming_the_holder(tiny_cfg, tmp_path):
  workdir = str(tmp_path / "run")
  with rundir.Lock(workdir):
    with pytest.raises(ValueError, match=rf"in use by pid {os.getpid()} on host {socket.gethostname()} since "
                                         r"\d{4}-.*one writer at a time"):
      loop.train(tiny_cfg, workdir)
    assert os.listdir(workdir) == [rundir.LOCK]
  assert not os.path.exists(workdir)  # the lock's directory went with it


def test_a_stale_lock_does_not_block_a_resume_but_another_hosts_lock_does(tiny_cfg, tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  workdir = tmp_path / "run"
  workdir.mkdir()
  stale = {"pid": dead.pid, "host": socket.gethostname(), "start": "2020-01-02T03:04:05+00:00",
           "command": "python -m arithlab.main (killed)", "token": "0"}
  (workdir / rundir.LOCK).write_text(json.dumps(dict(stale, host="elsewhere")))
  with pytest.raises(ValueError, match=rf"in use by pid {dead.pid} on host elsewhere since 2020-01-02T03:04:05"
                                       rf".*\(command: python -m arithlab.main \(killed\)\).*delete .*lock.json"):
    loop.train(tiny_cfg, str(workdir))
  (workdir / rundir.LOCK).write_text(json.dumps(stale))
  assert loop.train(tiny_cfg, str(workdir))["step"] == 4
  assert not (workdir / rundir.LOCK).exists()


TOY_SWEEP = '''
from arithlab import config, report, sweep
REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = ()
def get_config(arg=None):
  return config.default_config()
def get_sweep(arg=None):
  return sweep.field_axis("seed", "seed", [0, 1])
'''


def test_a_second_sweep_on_one_directory_is_refused(tmp_path):
  (tmp_path / "toy.py").write_text(TOY_SWEEP)
  workdir = str(tmp_path / "sweep")
  with rundir.Lock(workdir):
    with pytest.raises(ValueError, match=rf"sweep is in use by pid {os.getpid()}"):
      sweep.run(str(tmp_path / "toy.py"), workdir)
    assert os.listdir(workdir) == [rundir.LOCK]


def test_a_resume_must_be_the_same_run_and_a_refusal_writes_nothing(tiny_cfg, tmp_path):
  workdir = str(tmp_path / "run")
  loop.train(tiny_cfg, workdir)
  record = snapshot(workdir)

  def changed(**fields):
    cfg = copy.deepcopy(tiny_cfg)
    for field, value in fields.items():
      section, leaf = (cfg, field) if "." not in field else (cfg[field.split(".")[0]], field.split(".")[1])
      section[leaf] = value
    return cfg

  with pytest.raises(ValueError, match=r"holds another run: its config.json differs in data.format: "
                                       r"\"reverse_answer\+dollar\" -> \"plain\"; seed: 0 -> 7\. A resume may "
                                       r"change only name, train.steps, .*nothing was written"):
    loop.train(changed(**{"data.format": "plain", "seed": 7, "train.steps": 6}), workdir)
  with pytest.raises(ValueError, match=r"model.d_ff: 32 -> 64; model.d_model: 16 -> 32"):
    loop.train(changed(**{"model.d_model": 32, "model.d_ff": 64}), workdir)
  with pytest.raises(ValueError, match=r"no eval set at"):  # eval settings may change, but must work
    loop.train(changed(**{"eval.tfds_dir": str(tmp_path / "missing")}), workdir)
  with pytest.raises(ValueError, match=r"exceeds the limit of encoding 'learned'"):
    loop.train(changed(**{"model.encoding": "learned", "model.max_len": 8}), workdir)
  assert snapshot(workdir) == record

  longer = changed(**{"train.steps": 6, "eval.n_per_cell": 3})
  assert loop.train(longer, workdir)["step"] == 6
  first, second = attempts(workdir)
  assert first["resume_from"] == 0 and first["changed"] == {}
  assert second["resume_from"] == 4 and second["changed"] == {"eval.n_per_cell": [2, 3], "train.steps": [4, 6]}
  assert second["pid"] == os.getpid() and second["git_commit"]
  with open(os.path.join(workdir, rundir.CONFIG)) as f:
    assert json.load(f)["train"]["steps"] == 6
  assert snapshot(workdir)[rundir.ENV] == record[rundir.ENV]  # the environment the run started in


def test_a_directory_that_is_not_a_run_is_refused_untouched(tiny_cfg, tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match=r"is not empty and not an arithlab run \(no config.json; it holds "
                                       r"\['notes.txt'\]\); nothing was written"):
    loop.train(tiny_cfg, str(tmp_path))
  assert os.listdir(tmp_path) == ["notes.txt"]
  tiny_cfg.eval.tfds_dir = str(tmp_path / "missing")
  with pytest.raises(ValueError, match=r"no eval set at"):
    loop.train(tiny_cfg, str(tmp_path / "new"))
  assert not os.path.exists(tmp_path / "new")


def test_a_corrupt_latest_checkpoint_is_skipped_and_kept(tiny_cfg, tmp_path, same_run, capsys):
  whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")
  loop.train(tiny_cfg, whole)
  loop.train(tiny_cfg, pieces)
  step_dir = os.path.join(pieces, "checkpoints", "4")
  largest = max((os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names), key=os.path.getsize)
  with open(largest, "r+b") as f:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    f.seek(0)
    f.write(data)
  corrupt = snapshot(step_dir)
  assert loop.train(tiny_cfg, pieces)["step"] == 4  # falls back to 2, trains 3 and 4 again, saves 4 anew
  assert f"checkpoint 4 is corrupt, resuming from step 2; moved it to {pieces}/corrupt_checkpoints/4" in \
      capsys.readouterr().out
  assert snapshot(os.path.join(pieces, "corrupt_checkpoints", "4")) == corrupt  # kept as it was
  [moved] = attempts(pieces)[-1]["corrupt_checkpoints"]
  assert moved["step"] == 4 and "nothing was deleted" in moved["error"]
  same_run(tiny_cfg, whole, pieces)
