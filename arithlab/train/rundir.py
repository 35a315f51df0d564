"""The run directory as a record nobody can corrupt: one writer at a time, a resume that proves
it continues the same run, and nothing written before every check has passed.

  lock.json           the process writing the directory (pid, host, start, command) while it runs
  config.json         the run's config; a resume may change only the RESUMABLE fields, and then
                      rewrites it (the change is recorded in run.json)
  env.json            versions, devices and git commit of the first attempt
  run.json            {"attempts": [...]}: one entry per start (time, host, pid, git commit, the
                      checkpoint step it resumed from, the RESUMABLE fields it changed, the
                      corrupt checkpoints it moved aside)
  metrics.jsonl, checkpoints/, eval/    written by the train loop
  corrupt_checkpoints/<step>/           checkpoints that failed to restore, moved out of the way
                                        (never deleted)

A directory that exists, is not empty and has no config.json is refused unless it holds only
files of a run record (a sweep point's point.json, attempts.jsonl and log.txt included).
Only process 0 reads and writes these files (`arithlab.train.metrics.is_writer`).
"""

import datetime
import json
import os
import shutil
import socket
import sys
import uuid
from typing import Any, Mapping

import ml_collections

from arithlab import config as config_lib
from arithlab.train import metrics as metrics_lib

LOCK, CONFIG, ENV, RUN, METRICS = "lock.json", "config.json", "env.json", "run.json", "metrics.jsonl"
CHECKPOINTS, CORRUPT, TRAIN_SET, BEST = "checkpoints", "corrupt_checkpoints", "train_set", "best.json"
# Everything a run directory may hold before its config.json is written (a sweep writes
# point.json, attempts.jsonl and log.txt into a point's directory before training it).
RECORD_NAMES = frozenset({LOCK, CONFIG, ENV, RUN, METRICS, METRICS + ".tmp", CHECKPOINTS, CORRUPT, TRAIN_SET, "eval",
                          "point.json", "attempts.jsonl", "log.txt", "done.json"})
# Config fields a resume may change (a dotted name or a whole section): what and how often to
# log, evaluate and checkpoint, how long to train (the learning-rate schedule then follows the
# new train.steps from the resumed step on), the mesh (the same run on other hardware) and the
# display name. Any other difference is another run and is refused.
RESUMABLE = ("name", "train.steps", "train.log_every", "checkpoint.every", "checkpoint.keep",
             "checkpoint.async_save", "eval", "mesh", "logging")


def now() -> str:
  """The current UTC time, ISO 8601 to the second."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def as_json(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as config.json stores it (tuples become lists, other objects their str)."""
  return json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # it exists, under another user
    return True
  return True


class Lock:
  """An exclusive claim on a directory: directory/lock.json names the holder.

  Created atomically (written to a unique file, then hard-linked to lock.json, which fails if
  it exists). A lock whose holder ran on this host and whose pid is gone (a killed process) is
  stale and taken over; any other existing lock refuses the claim. Use as a context manager.
  """

  def __init__(self, directory: str):
    self.directory = os.path.abspath(directory)
    self.path = os.path.join(self.directory, LOCK)
    self.record = {"pid": os.getpid(), "host": socket.gethostname(), "start": now(),
                   "command": " ".join(sys.argv), "token": uuid.uuid4().hex}
    self.created_directory = False

  def holder(self) -> dict[str, Any] | None:
    """The lock file's record; None when there is none; {} when it cannot be read."""
    try:
      with open(self.path) as f:
        return json.load(f)
    except FileNotFoundError:
      return None
    except (OSError, ValueError):
      return {}

  def _create(self) -> bool:
    tmp = f"{self.path}.{self.record['token']}"
    with open(tmp, "w") as f:
      json.dump(self.record, f)
      f.flush()
      os.fsync(f.fileno())
    try:
      os.link(tmp, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(tmp)

  def _take_over(self, stale: Mapping[str, Any]) -> None:
    """Moves a stale lock away, and puts it back if another process replaced it meanwhile."""
    moved = f"{self.path}.stale.{self.record['token']}"
    try:
      os.rename(self.path, moved)
    except FileNotFoundError:
      return
    with open(moved) as f:
      text = f.read()
    try:
      taken = json.loads(text)
    except ValueError:
      taken = {}
    if taken == dict(stale):
      os.remove(moved)
    else:
      try:
        os.link(moved, self.path)
      except FileExistsError:
        pass
      os.remove(moved)

  def acquire(self) -> "Lock":
    """Claims the directory (creating it if needed).

    Raises:
      ValueError: naming the holder (pid, host, start time, command) when another live process,
        or a process on another host, holds the lock.
    """
    self.created_directory = not os.path.isdir(self.directory)
    os.makedirs(self.directory, exist_ok=True)
    for _ in range(3):
      if self._create():
        return self
      holder = self.holder()
      if holder is None:
        continue
      if holder and holder.get("host") == self.record["host"] and not _alive(int(holder.get("pid", -1))):
        self._take_over(holder)
        continue
      break
    self.release()
    who = (f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('start')} "
           f"(command: {holder.get('command')})") if holder else "a holder whose lock file cannot be read"
    raise ValueError(f"{self.directory} is in use by {who}: one writer at a time. Wait for it to finish or "
                     f"stop it; if it is gone (killed on another host), delete {self.path}")

  def release(self) -> None:
    """Removes the lock file if it is still ours, and the directory if acquire created it and
    it is empty again."""
    holder = self.holder()
    if holder and holder.get("token") == self.record["token"]:
      os.remove(self.path)
    if self.created_directory and os.path.isdir(self.directory) and not os.listdir(self.directory):
      os.rmdir(self.directory)

  def __enter__(self) -> "Lock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def saved_config(workdir: str) -> dict[str, Any] | None:
  """The config.json of the run in workdir; None for a new run (no directory, an empty one, or
  one holding only RECORD_NAMES without checkpoints or metrics).

  Raises:
    ValueError: when workdir is not a directory, holds other files (not an arithlab run), or
      holds checkpoints or metrics but no config.json; nothing is written.
  """
  if not os.path.exists(workdir):
    return None
  if not os.path.isdir(workdir):
    raise ValueError(f"--workdir={workdir} is a file, not a run directory; choose another --workdir")
  path = os.path.join(workdir, CONFIG)
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  names = set(os.listdir(workdir))
  foreign = sorted(names - RECORD_NAMES)
  if foreign:
    raise ValueError(f"--workdir={workdir} is not empty and not an arithlab run (no {CONFIG}; it holds "
                     f"{foreign[:5]}{' ...' if len(foreign) > 5 else ''}); nothing was written: choose a new "
                     "or empty directory")
  checkpoints = os.path.join(workdir, CHECKPOINTS)
  if os.path.exists(os.path.join(workdir, METRICS)) or (os.path.isdir(checkpoints) and os.listdir(checkpoints)):
    raise ValueError(f"--workdir={workdir} holds metrics or checkpoints but no {CONFIG}, so a resume cannot "
                     "check that it is the same run; nothing was written: choose another --workdir")
  return None


def resumable(field: str) -> bool:
  """Whether a resume may change the dotted config field (see RESUMABLE)."""
  return any(field == r or field.startswith(r + ".") for r in RESUMABLE)


def config_changes(saved: Mapping[str, Any], cfg: ml_collections.ConfigDict) -> dict[str, list[Any]]:
  """{dotted field: [saved value, new value]} of every leaf that differs (as config.json stores
  them). A field the saved config lacks (added to the code since) counts only when the new
  config sets it away from its default."""
  old, new = config_lib.leaves(saved), config_lib.leaves(as_json(cfg))
  default = config_lib.leaves(as_json(config_lib.default_config()))
  changes = {}
  for field in sorted(old.keys() | new.keys()):
    before, after = old.get(field, default.get(field, "<absent>")), new.get(field, "<absent>")
    if before != after:
      changes[field] = [before, after]
  return changes


def check_resume(workdir: str, saved: Mapping[str, Any], cfg: ml_collections.ConfigDict) -> dict[str, list[Any]]:
  """The RESUMABLE changes of cfg against the run's saved config.

  Raises:
    ValueError: listing every other differing field as "field: old -> new"; nothing is written.
  """
  changes = config_changes(saved, cfg)
  refused = {k: v for k, v in changes.items() if not resumable(k)}
  if refused:
    listed = "; ".join(f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in refused.items())
    raise ValueError(f"{workdir} holds another run: its {CONFIG} differs in {listed}. A resume may change only "
                     f"{', '.join(RESUMABLE)}; nothing was written: use a new --workdir for a new run")
  return {k: v for k, v in changes.items() if resumable(k)}


def read_rows(workdir: str) -> list[dict[str, Any]]:
  """The rows of workdir/metrics.jsonl; a line cut short by a kill (unparsable) is dropped."""
  rows = []
  try:
    with open(os.path.join(workdir, METRICS)) as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    return rows
  for line in lines:
    try:
      rows.append(json.loads(line))
    except ValueError:
      continue
  return rows


def trim_metrics(workdir: str, step: int) -> None:
  """Drops the metrics.jsonl rows after `step` (written after the checkpoint a resume starts
  from) and lines cut short by a kill. Rewrites the file atomically (temp file, then rename), and
  only when something is dropped."""
  path = os.path.join(workdir, METRICS)
  if not os.path.exists(path):
    return
  with open(path) as f:
    count = sum(1 for line in f if line.strip())
  kept = [row for row in read_rows(workdir) if row["step"] <= step]
  if len(kept) == count:
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(json.dumps(row) + "\n" for row in kept)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def move_aside(workdir: str, step: int) -> str:
  """Moves checkpoints/<step> to corrupt_checkpoints/<step> (a new name if that exists);
  returns the new path. Nothing is deleted."""
  target = os.path.join(workdir, CORRUPT, str(step))
  suffix = 1
  while os.path.exists(target):
    target = os.path.join(workdir, CORRUPT, f"{step}-{suffix}")
    suffix += 1
  os.makedirs(os.path.dirname(target), exist_ok=True)
  shutil.move(os.path.join(workdir, CHECKPOINTS, str(step)), target)
  return target


def record_attempt(workdir: str, attempt: Mapping[str, Any]) -> None:
  """Appends `attempt` to run.json's attempts list (rewritten atomically)."""
  path = os.path.join(workdir, RUN)
  record = {"attempts": []}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  record["attempts"].append(dict(attempt))
  metrics_lib.write_json(path, record)
