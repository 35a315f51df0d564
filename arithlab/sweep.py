"""Sweeps: one command runs a paper's comparison, survives interruption, and ends in a report.

  python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=DIR [--parallel=N]
      [--slurm [--sbatch=--gres=gpu:1 ...] [--distributed]] [--only=axis=label,...] [--report_only]
      [--config.x=y ...]

An experiment file (experiments/*.py, big_vision style) defines, beside its docstring:
  get_config(arg) -> ConfigDict   the base run config. arg: None = the paper's model and budget,
                                  "small" = a 2-core CPU in about 20 minutes per point or less,
                                  "micro" = seconds (tests); anything else raises (`budget`).
  get_sweep(arg) -> list[Point]   the points, usually `product(axis(...), field_axis(...), ...)`.
  REFERENCE: tuple[arithlab.report.Reference, ...]   the paper's numbers, table/figure named.
  REPORT: arithlab.report.Spec    the headline metric and the plots' axes.

A point's config is get_config(arg), then the point's overrides, then the command line's
`--config.x=y` overrides (these apply to every point, so "change one thing" is one flag).
Point i runs in DIR/points/<axes>-<hash>/, hash = the first 10 hex digits of the SHA-256 of
what the resolved config changes from the defaults (`config_hash`), so a changed config never
reuses an old run and a new field with a default renames none. Its record is what the
train loop writes (config.json, env.json, metrics.jsonl, checkpoints/, eval/) plus point.json
(axes, overrides, command), attempts.jsonl (one line per start, with the checkpoint step it
resumed from) and done.json (written when training finished; the point is then skipped).
A killed point restarts from its latest checkpoint through the train loop's exact resume.
Points that differ only in their `eval` section (e.g. eval.rope_scaling: a trick applied at
evaluation time only) train the same run: the first of them trains, and each other one, when
that run is done, scores its final checkpoint (`loop.evaluate_checkpoint`) into its own
directory (metrics.jsonl with one eval row, eval/, done.json naming the run it scored); when
the trained run is not done yet (another process or array task holds it) it trains itself.

Locally the points run one after another in this process (--parallel=1) or as N subprocesses
of the point command
  python -m arithlab.sweep --config=<same> --workdir=DIR --point=I [--config.x=y ...]
(output in the point's log.txt). --slurm instead writes DIR/sweep.sbatch, a job array with one
task per point running that same command (a multi-host point: add --distributed and the
srun task count through --sbatch), and runs nothing. Afterwards DIR/report.md, report.csv and
the plots are written (arithlab.report); --report_only rebuilds them from the run directories.
--only=axis=label1,label2 (repeatable) runs a subset of the points; the report lists them all.
A sweep that runs points locks DIR (DIR/lock.json, as a run directory's lock): a second sweep
on the same DIR is refused, naming the first; each point's run directory has its own lock.
"""

import copy
import dataclasses
import datetime
import hashlib
import importlib.util
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from typing import Any, Mapping, Sequence

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from arithlab import config, process, report
from data_gen import pipeline
from arithlab.train import loop
from arithlab.train import metrics as metrics_lib
from arithlab.train import rundir

BUDGETS = ("small", "micro")
EXPERIMENT_ATTRIBUTES = ("get_config", "get_sweep", "REFERENCE", "REPORT")
POINTS_DIR = "points"
DONE, ATTEMPTS, POINT = report.DONE_FILE, "attempts.jsonl", "point.json"


def budget(arg: str | None, experiment: str) -> str:
  """The budget an experiment's `arg` names: "full" (None or ""), "small" or "micro".

  Raises:
    ValueError: naming the experiment and the unknown argument, listing the valid ones.
  """
  if not arg:
    return "full"
  if arg not in BUDGETS:
    raise ValueError(f"{experiment}: argument {arg!r} unknown; choose one of: {', '.join(BUDGETS)} "
                     f"(or none for the paper's budget)")
  return arg


MIN_PER_LENGTH = 100  # problems every reported length pools (a :small grid's short lengths get more per cell)
MIN_PER_CELL = 100  # problems per cell of a full-budget grid
VAL_PROBLEMS = 1000  # about how many validation problems a :small grid holds (at least one per cell)


def small(cfg: ml_collections.ConfigDict, *, steps: int = 4000, n_per_cell: int, eval_batch: int,
          **model: Any) -> ml_collections.ConfigDict:
  """Shrinks an experiment's config in place to the usual `:small` budget (minutes on a 2-core
  CPU): a 2-layer width-128 model (4 heads, d_ff 512; `model` changes other model fields),
  `steps` steps of batch 64 at lr 1e-3 after 200 warmup steps, evaluated at half time and at
  the end on `n_per_cell` problems per cell, raised so that every length pools MIN_PER_LENGTH
  (`config.cell_counts`), `eval_batch` rows per decoder call, and about VAL_PROBLEMS validation
  problems over the grid (eval.lengths must be set). Returns cfg."""
  cfg.model.update(layers=2, d_model=128, heads=4, d_ff=512, **model)
  cfg.train.update(steps=steps, batch_size=64, lr=1e-3, warmup_steps=200)
  cells = len(config.cell_counts(cfg))
  cfg.eval.update(every=steps // 2, n_per_cell=n_per_cell, batch_size=eval_batch, min_per_length=MIN_PER_LENGTH,
                  val_n_per_cell=-(-VAL_PROBLEMS // cells))
  return cfg


def check_problem_counts(cfg: ml_collections.ConfigDict, size: str, length_axis: str = "max") -> None:
  """The evaluation protocol's sample sizes: a full-budget grid has at least MIN_PER_CELL problems
  in every cell, a :small one pools at least MIN_PER_LENGTH at every length its report shows
  (`length_axis` as in `report.Spec`); :micro is not checked.

  Raises:
    ValueError: naming the budget, the cell or length, its count and the eval field to raise.
  """
  if size == "micro":
    return
  counts = config.cell_counts(cfg)
  if size == "full":
    short = {cell: n for cell, n in counts.items() if n < MIN_PER_CELL}
    if short:
      raise ValueError(f"full budget: {len(short)} eval cells have fewer than {MIN_PER_CELL} problems (e.g. "
                       f"{next(iter(short.items()))}); raise eval.n_per_cell")
    return
  axes = pipeline.build(cfg.data).sources[0].task.length_axes
  pooled: dict[int, int] = {}
  for cell, n in counts.items():
    length = report.length_of(cell, axes, length_axis)
    pooled[length] = pooled.get(length, 0) + n
  short = {length: n for length, n in pooled.items() if n < MIN_PER_LENGTH}
  if short:
    raise ValueError(f"{size} budget: lengths {sorted(short)} pool fewer than {MIN_PER_LENGTH} problems "
                     f"({short}); raise eval.min_per_length or eval.n_per_cell")


def micro(cfg: ml_collections.ConfigDict, eval_lengths: Mapping[str, tuple[int, int]]) -> ml_collections.ConfigDict:
  """Shrinks an experiment's config in place to its `:micro` budget (seconds on a CPU, for
  tests): a 1-layer width-16 model, one step of batch 8, one evaluation of 2 problems per cell
  of `eval_lengths` at the end. Data, format and encoding stay the experiment's. Returns cfg."""
  cfg.model.update(layers=1, d_model=16, heads=2, d_ff=32, dropout=0.0)
  cfg.train.update(steps=1, batch_size=8, grad_accum=1, warmup_steps=0, log_every=1)
  cfg.eval.update(every=0, n_per_cell=2, batch_size=8)
  cfg.eval.lengths = dict(eval_lengths)
  cfg.checkpoint.update(every=1, keep=1)
  return cfg


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of a sweep.

  axes: axis name -> label (str, int or float): what the report groups and plots by.
  overrides: dotted config field ("data.format", "seed") -> value; a dict value replaces a
    whole section (e.g. "data.position_options").
  """

  axes: Mapping[str, Any]
  overrides: Mapping[str, Any]

  @property
  def name(self) -> str:
    """"format=plain,seed=0"."""
    return ",".join(f"{k}={v}" for k, v in self.axes.items())


def axis(name: str, values: Mapping[Any, Mapping[str, Any]]) -> list[Point]:
  """A sweep axis whose labels each set one or more fields: {label: {field: value, ...}}."""
  if not values:
    raise ValueError(f"sweep axis {name!r} has no values")
  return [Point({name: label}, dict(fields)) for label, fields in values.items()]


def field_axis(name: str, field: str, values: Sequence[Any]) -> list[Point]:
  """A sweep axis over one field, labelled by its values: field_axis("seed", "seed", [0, 1])."""
  return axis(name, {value: {field: value} for value in values})


def product(*axes: Sequence[Point]) -> list[Point]:
  """Every combination of one point per axis (the first axis varies slowest).

  Raises:
    ValueError: two axes with the same name, or two axes setting the same field.
  """
  points = []
  for combo in itertools.product(*axes):
    names = [n for p in combo for n in p.axes]
    if len(set(names)) != len(names):
      raise ValueError(f"sweep axes {names} repeat an axis name")
    overrides: dict[str, Any] = {}
    for p in combo:
      clash = sorted(set(overrides) & set(p.overrides))
      if clash:
        raise ValueError(f"sweep axis {p.name!r} sets field(s) {clash} that another axis sets too")
      overrides.update(p.overrides)
    points.append(Point({k: v for p in combo for k, v in p.axes.items()}, overrides))
  return points


def encoding_axis(names: Sequence[str], *, max_pos: int | None = None, max_offset: int | None = None,
                  randomized_len: int | None = None, name: str = "encoding") -> list[Point]:
  """An axis over positional encodings, each paired with the position rule it reads.

  abacus gets the `abacus` rule (training offsets up to max_offset), coupling the `coupling`
  rule (IDs up to max_pos, so a table of max_pos + 1 rows), `randomized:<enc>` the
  `randomized` rule over {0..randomized_len-1}; every other encoding reads sequential positions.

  Raises:
    ValueError: an encoding whose option (max_pos, max_offset, randomized_len) is not given.
  """
  def needs(encoding: str, option: str, value: int | None) -> int:
    if value is None:
      raise ValueError(f"encoding_axis: encoding {encoding!r} needs {option}=")
    return value

  def fields(encoding: str) -> dict[str, Any]:
    if encoding == "abacus":
      return {"data.positions": "abacus",
              "data.position_options": {"max_offset": needs(encoding, "max_offset", max_offset)}}
    if encoding == "coupling":
      top = needs(encoding, "max_pos", max_pos)
      return {"data.positions": "coupling", "data.position_options": {"max_pos": top}, "model.max_len": top + 1}
    if encoding.startswith("randomized:"):
      length = needs(encoding, "randomized_len", randomized_len)
      return {"data.positions": "randomized", "data.position_options": {"L": length},
              "model.randomized_max_len": length}
    return {"data.positions": "sequential", "data.position_options": {}}

  return axis(name, {e: {"model.encoding": e, **fields(e)} for e in names})


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Mapping[str, Any],
                    where: str) -> ml_collections.ConfigDict:
  """A copy of `cfg` with dotted fields set.

  Raises:
    ValueError: naming `where`, the field, and the fields its section has, when the field does
      not exist or the value has the wrong type.
  """
  cfg = copy.deepcopy(cfg)
  for key, value in overrides.items():
    node, leaf = config.field_section(cfg, key, where)
    try:
      node[leaf] = value
    except TypeError as e:
      raise ValueError(f"{where}: field {key!r} cannot take {value!r}: {e}") from e
  return cfg


def load_experiment(spec: str):
  """(module, arg) for "experiments/x.py[:arg]".

  Raises:
    ValueError: the file is missing or lacks one of EXPERIMENT_ATTRIBUTES.
  """
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ValueError(f"experiment file {path!r} not found (from --config={spec!r})")
  name = "arithlab_experiment_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  missing = [a for a in EXPERIMENT_ATTRIBUTES if not hasattr(module, a)]
  if missing:
    raise ValueError(f"experiment file {path!r} lacks {missing}; an experiment defines "
                     f"{', '.join(EXPERIMENT_ATTRIBUTES)}")
  return module, arg or None


RECORD_ONLY = ("logging",)  # config sections that change where the record goes, never what a run computes


def config_hash(cfg: ml_collections.ConfigDict, *, skip: Sequence[str] = ()) -> str:
  """First 10 hex digits of the SHA-256 of what `cfg` changes from `config.default_config()`
  (its leaves that differ or are new, and the default ones it lacks), as sorted JSON; sections
  named in `skip` or RECORD_ONLY are left out. A field added later with a default keeps every
  existing hash, and turning on TensorBoard or W&B keeps a point's directory."""
  as_json = lambda v: json.dumps(v, sort_keys=True, default=repr)
  default = {k: as_json(v) for k, v in config.leaves(config.default_config().to_dict()).items()}
  leaves = {k: as_json(v) for k, v in config.leaves(cfg.to_dict()).items()}
  changes = {k: v for k, v in leaves.items() if default.get(k) != v}
  changes.update({k: "<absent>" for k in default.keys() - leaves.keys()})
  changes = {k: v for k, v in changes.items() if k.split(".")[0] not in (*skip, *RECORD_ONLY)}
  return hashlib.sha256(as_json(changes).encode()).hexdigest()[:10]


def slug(point: Point) -> str:
  """A directory-safe, readable name: "format-plain_seed-0" (at most 100 characters)."""
  text = "_".join(f"{k}-{v}" for k, v in point.axes.items())
  return re.sub(r"[^A-Za-z0-9._+-]+", "-", text)[:100]


@dataclasses.dataclass(frozen=True)
class PlannedPoint:
  """A point resolved: its index in the sweep, its config and its run directory."""

  index: int
  point: Point
  cfg: ml_collections.ConfigDict
  workdir: str


def plan(module, arg: str | None, workdir: str,
         cli_overrides: Mapping[str, Any] | None = None) -> list[PlannedPoint]:
  """The sweep's points with their resolved configs and directories.

  Raises:
    ValueError: an empty sweep, two points with one config, or a bad override (see
      `apply_overrides`).
  """
  points = module.get_sweep(arg)
  if not points:
    raise ValueError(f"{module.__name__}: get_sweep({arg!r}) has no points")
  base = module.get_config(arg)
  planned, seen = [], {}
  for i, point in enumerate(points):
    cfg = apply_overrides(base, point.overrides, f"sweep point {point.name!r}")
    cfg = apply_overrides(cfg, cli_overrides or {}, "command line")
    digest = config_hash(cfg)
    if digest in seen:
      raise ValueError(f"sweep points {seen[digest]!r} and {point.name!r} resolve to the same config")
    seen[digest] = point.name
    planned.append(PlannedPoint(i, point, cfg, os.path.join(workdir, POINTS_DIR, f"{slug(point)}-{digest}")))
  return planned


def is_done(point_dir: str) -> bool:
  return os.path.exists(os.path.join(point_dir, DONE))


def latest_checkpoint(point_dir: str) -> int:
  """The highest finished checkpoint step in point_dir/checkpoints (0 if none)."""
  path = os.path.join(point_dir, "checkpoints")
  steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
  return max(steps, default=0)


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def training_key(cfg: ml_collections.ConfigDict) -> str:
  """The config hash without the eval section: equal for runs that train identically."""
  return config_hash(cfg, skip=("eval",))


def trained_twin(p: PlannedPoint, planned: Sequence[PlannedPoint]) -> PlannedPoint | None:
  """The first planned point that trains the same run as `p` (see `training_key`), when that
  is not `p` itself; None otherwise."""
  key = training_key(p.cfg)
  first = next((q for q in planned if q.workdir == p.workdir or training_key(q.cfg) == key), p)
  return None if first.workdir == p.workdir else first


def run_point(p: PlannedPoint, command: Sequence[str], planned: Sequence[PlannedPoint] = ()) -> None:
  """Trains (or resumes, or skips when done) one point, writing its sweep record; a point
  whose run another planned point has trained and finished is scored from that run's
  checkpoint instead (`trained_twin`).

  Every process of a multi-host point calls this; process 0 writes the files.
  """
  if is_done(p.workdir):
    return
  writer = metrics_lib.is_writer()
  if writer:
    metrics_lib.write_json(os.path.join(p.workdir, POINT), {
        "index": p.index, "name": p.point.name, "axes": dict(p.point.axes),
        "overrides": dict(p.point.overrides), "command": shlex.join(command)})
    with open(os.path.join(p.workdir, ATTEMPTS), "a") as f:
      f.write(json.dumps({"start": _now(), "resume_from": latest_checkpoint(p.workdir)}) + "\n")
  start, scored = time.perf_counter(), {}
  twin = trained_twin(p, planned)
  if twin is not None and is_done(twin.workdir) and not latest_checkpoint(p.workdir):
    summary = loop.evaluate_checkpoint(p.cfg, twin.workdir, twin.cfg.train.steps, record_dir=p.workdir,
                                       eval_dir=os.path.join(p.workdir, "eval"))
    if writer:
      metrics_lib.MetricsWriter(p.workdir).write(summary.pop("step"), summary)
    scored = {"scored_checkpoint_of": twin.workdir}
  else:
    loop.train(p.cfg, p.workdir)
  if writer:
    metrics_lib.write_json(os.path.join(p.workdir, DONE), {
        "name": p.point.name, "step": p.cfg.train.steps, "finished": _now(),
        "wall_s": round(time.perf_counter() - start, 1), **scored})


def point_command(spec: str, workdir: str, index: int | str, cli_args: Sequence[str]) -> list[str]:
  """The command that runs point `index` of the sweep (locally, or in a SLURM array task with
  index "$SLURM_ARRAY_TASK_ID")."""
  return ["python", "-m", "arithlab.sweep", f"--config={spec}", f"--workdir={workdir}",
          f"--point={index}", *cli_args]


def run_local(planned: Sequence[PlannedPoint], *, spec: str, workdir: str, cli_args: Sequence[str],
              parallel: int) -> list[str]:
  """Runs the unfinished points: in this process (parallel=1) or as `parallel` subprocesses
  of the point command (output to each point's log.txt). Returns the names of failed points."""
  todo = [p for p in planned if not is_done(p.workdir)]
  print(f"[sweep] {len(planned)} points selected, {len(planned) - len(todo)} finished, {len(todo)} to run", flush=True)
  failed = []
  if parallel <= 1:
    for p in todo:
      print(f"[sweep] point {p.index}: {p.point.name} -> {p.workdir}", flush=True)
      try:
        run_point(p, point_command(spec, workdir, p.index, cli_args), planned)
      except Exception:  # one broken point must not stop the others; reported at the end
        traceback.print_exc()
        failed.append(p.point.name)
    return failed
  running: list[tuple[PlannedPoint, subprocess.Popen]] = []
  queue = list(todo)
  while queue or running:
    while queue and len(running) < parallel:
      p = queue.pop(0)
      os.makedirs(p.workdir, exist_ok=True)
      command = point_command(spec, workdir, p.index, cli_args)
      command[0] = sys.executable
      with open(os.path.join(p.workdir, "log.txt"), "a") as log:
        running.append((p, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)))
      print(f"[sweep] started point {p.index}: {p.point.name} (log: {p.workdir}/log.txt)", flush=True)
    time.sleep(0.5)
    for p, proc in list(running):
      if proc.poll() is not None:
        running.remove((p, proc))
        status = "finished" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        if proc.returncode == 0 and not is_done(p.workdir):
          status = "FAILED (its config resolved differently in the subprocess: did the code change? see log.txt)"
        print(f"[sweep] point {p.index}: {p.point.name} {status}", flush=True)
        if status != "finished":
          failed.append(p.point.name)
  return failed


def select(planned: Sequence[PlannedPoint], only: Sequence[str]) -> list[PlannedPoint]:
  """The points whose labels pass every filter "axis=label1,label2" (labels compared as text).

  Raises:
    ValueError: a malformed filter, an axis the sweep does not have, or a label no point has.
  """
  chosen = list(planned)
  for rule in only:
    name, sep, labels = rule.partition("=")
    values = set(labels.split(","))
    known = {str(p.point.axes[name]) for p in planned if name in p.point.axes}
    if not sep or not known:
      axes = sorted({a for p in planned for a in p.point.axes})
      raise ValueError(f"--only={rule!r}: write 'axis=label1,label2' with an axis of the sweep: {', '.join(axes)}")
    if values - known:
      raise ValueError(f"--only={rule!r}: axis {name!r} has no label(s) {sorted(values - known)}; "
                       f"its labels: {', '.join(sorted(known))}")
    chosen = [p for p in chosen if str(p.point.axes.get(name)) in values]
  return chosen


def write_slurm(planned: Sequence[PlannedPoint], *, spec: str, workdir: str, cli_args: Sequence[str],
                sbatch: Sequence[str], job_name: str) -> str:
  """Writes workdir/sweep.sbatch: a job array with one task per given point (their sweep
  indices); returns its path."""
  workdir = os.path.abspath(workdir)
  command = point_command(spec, workdir, "$SLURM_ARRAY_TASK_ID", cli_args)
  lines = [
      "#!/bin/bash",
      f"# arithlab sweep {spec}: {len(planned)} points, one per array task (submit: sbatch {workdir}/sweep.sbatch).",
      "# A finished point exits at once; a restarted task resumes its point from the latest checkpoint.",
      f"# Afterwards: python -m arithlab.sweep --config={spec} --workdir={workdir} --report_only",
      f"#SBATCH --job-name={job_name}",
      f"#SBATCH --array={','.join(str(p.index) for p in planned)}",
      f"#SBATCH --output={workdir}/slurm/%A_%a.log",
      *(f"#SBATCH {option}" for option in sbatch),
      f"cd {shlex.quote(os.getcwd())}",
      "srun ${PYTHON:-python} " + " ".join(
          arg if arg.startswith("--point=") else shlex.quote(arg) for arg in command[1:]),
  ]
  os.makedirs(os.path.join(workdir, "slurm"), exist_ok=True)
  path = os.path.join(workdir, "sweep.sbatch")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def run(spec: str, workdir: str, *, parallel: int = 1, cli_args: Sequence[str] = (),
        cli_overrides: Mapping[str, Any] | None = None, slurm: bool = False, sbatch: Sequence[str] = (),
        report_only: bool = False, only: Sequence[str] = ()) -> list[str]:
  """The sweep of `spec` ("experiments/x.py[:arg]") in `workdir`: runs its points (those that
  pass the `only` filters, see `select`) or writes the SLURM script for them, then writes the
  report of all points. cli_args: the `--config.x=y` flags passed on to point commands;
  cli_overrides: the same as {field: value}. Returns the names of failed points."""
  module, arg = load_experiment(spec)
  planned = plan(module, arg, workdir, cli_overrides)
  chosen = select(planned, only)
  failed: list[str] = []
  if slurm:
    job_name = "arithlab-" + re.sub(r"\W+", "-", os.path.basename(spec).replace(".py", ""))
    path = write_slurm(chosen, spec=spec, workdir=workdir, cli_args=cli_args, sbatch=sbatch, job_name=job_name)
    print(f"[sweep] wrote {path} ({len(chosen)} array tasks); submit it with sbatch", flush=True)
  elif not report_only:
    with rundir.Lock(workdir):
      failed = run_local(chosen, spec=spec, workdir=workdir, cli_args=cli_args, parallel=parallel)
  out = report.write(workdir, planned, module.REPORT, module.REFERENCE, title=spec)
  print(f"[sweep] report: {out}", flush=True)
  return failed


def define_flags() -> None:
  """The command-line flags (defined only when this module runs as the program: experiment
  files import it as a library)."""
  config_flags.DEFINE_config_file("config", None, "experiment file and argument, e.g. experiments/lee2023.py:small")
  flags.DEFINE_string("workdir", None, "sweep directory (points/, report.md, report.csv, plots)")
  flags.DEFINE_integer("parallel", 1, "points run at once: 1 = one after another in this process, N = N subprocesses")
  flags.DEFINE_bool("slurm", False, "write workdir/sweep.sbatch (a job array, one task per point) instead of running")
  flags.DEFINE_multi_string("sbatch", [], "extra #SBATCH options for --slurm, e.g. --sbatch=--gres=gpu:1")
  flags.DEFINE_integer("point", None, "run only this point (its index in the sweep): what array tasks run")
  flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() in point commands (multi-host points)")
  flags.DEFINE_bool("report_only", False, "rebuild the report from the run directories without running")
  flags.DEFINE_multi_string("only", [], "run only the points with these labels, e.g. --only=format=plain,reverse "
                            "(repeat for several axes); the report still lists every point")
  flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  process.keep_freed_memory()  # as arithlab.main: batches reuse mapped pages
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  spec = config_flags.get_config_filename(f["config"])
  overrides = config_flags.get_override_values(f["config"])
  cli_args = [a for a in sys.argv[1:] if a.startswith("--config.")]
  if f.distributed:
    cli_args.append("--distributed")
  if f.point is not None:
    if f.distributed:
      jax.distributed.initialize()
    module, arg = load_experiment(spec)
    planned = plan(module, arg, f.workdir, overrides)
    if not 0 <= f.point < len(planned):
      raise app.UsageError(f"--point={f.point} is outside the sweep's {len(planned)} points (0..{len(planned) - 1})")
    run_point(planned[f.point], ["python", "-m", "arithlab.sweep", *sys.argv[1:]], planned)
    return
  failed = run(spec, f.workdir, parallel=f.parallel, cli_args=cli_args, cli_overrides=overrides, slurm=f.slurm,
               sbatch=f.sbatch, report_only=f.report_only, only=f.only)
  if failed:
    raise SystemExit(f"[sweep] {len(failed)} point(s) failed: {', '.join(failed)} (rerun to retry; finished points are skipped)")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config.parse_flags)
