"""Sweep reports: each point's result beside the paper's numbers, as report.md, report.csv and plots.

Everything is rebuilt from the point directories (metrics.jsonl eval rows and the final
eval/grid_<step>.json), so a report can be written at any time, also while a sweep runs
(unfinished points are listed as such): `python -m arithlab.sweep ... --report_only`.

Per point: the headline metric (`Spec.metric`, a summary key of arithlab.train.evaluate) at
the final step and at the checkpoint the validation set chose as best (the evaluation with the
highest `checkpoint.best_metric`, a val/ key: never chosen on the test grid), each with its 95%
Wilson interval over the problems of the metric's region (for a digit accuracy that treats the
region's problems as the sample, which is conservative), and exact match per length from the
final grid. Per group (points that differ only in the seed axis): the median
and the best over seeds, with the paper's numbers whose `Reference.where` matches the group.
Plots: exact match vs length per group (report_length.png; a cell's length is the largest of
its lengths, or one task axis: `Spec.length_axis`), and when `Spec.x_axis` names a numeric
sweep axis, the metric vs that axis per group of the other axes (report_<x_axis>.png). Paper
numbers are drawn as crosses of the group's colour.

Any set of run directories (the --workdir of arithlab.main, or sweep points, from any sweeps)
can be compared too:

  python -m arithlab.report --runs=runs/a,runs/b[,'runs/sweep/points/*'] [--metric=eval/exact_ood]
      [--length_axis=max] [--out=DIR]

prints each run's config fields that differ between the runs, its final metrics (the last
train row and the last evaluation) and exact match per length of its last eval grid, and with
--out writes the same as DIR/compare.md with two plots: exact match vs length
(compare_length.png) and the metric vs step (compare_steps.png).
"""

import csv
import dataclasses
import glob
import json
import os
import statistics
from typing import Any, Mapping, Sequence

from absl import app, flags
from matplotlib.figure import Figure

from arithlab import config as config_lib
from arithlab.train import evaluate as evaluate_lib
from arithlab.train import metrics as metrics_lib
from arithlab.train.evaluate import SUMMARY_KEYS, final_and_best, wilson_interval

DONE_FILE = "done.json"
METRIC_NAMES = {"eval/exact_id": "exact match, in-distribution cells",
                "eval/exact_ood": "exact match, out-of-distribution cells",
                "eval/digit_id": "digit accuracy, in-distribution cells",
                "eval/digit_ood": "digit accuracy, out-of-distribution cells",
                "eval/exact_all": "exact match, all cells",
                "eval/exact_target_id": "whole-target exact match (scratchpad included), in-distribution cells",
                "eval/exact_target_ood": "whole-target exact match (scratchpad included), out-of-distribution cells",
                "eval/exact_target_all": "whole-target exact match (scratchpad included), all cells"}


@dataclasses.dataclass(frozen=True)
class Reference:
  """A number a paper reports, placed beside the sweep points it corresponds to.

  where: sweep axis labels it belongs to ({"format": "reverse"}); it matches every group whose
    axes have these labels. value: the reported accuracy as a fraction in [0, 1].
  source: paper and table/figure. setting: the paper's conditions where they differ from the
    sweep's (lengths, model, samples). approximate: read off a plot or a rounded "~" figure.
  verified: checked against the paper itself (False: taken from secondary sources or memory, the
    table/figure number or value not checked). x / length: where the number sits on the
    Spec.x_axis plot / the length plot (None: table only).
  """

  where: Mapping[str, Any]
  value: float
  source: str
  setting: str = ""
  approximate: bool = False
  verified: bool = False
  x: float | None = None
  length: int | None = None

  def label(self) -> str:
    flags = [f for f, on in (("approx.", self.approximate), ("unverified", not self.verified)) if on]
    return f"{100 * self.value:.1f}%" + (f" ({', '.join(flags)})" if flags else "")


@dataclasses.dataclass(frozen=True)
class Spec:
  """What an experiment's report shows.

  metric: the headline, one of arithlab.train.evaluate.SUMMARY_KEYS. x_axis: a numeric sweep
  axis for the metric-vs-x plot (e.g. "samples"), or None. length_axis: "max" (a cell's
  length is its largest length) or a task length axis ("count"). seed_axis: the axis whose
  points are repeats of one setting.
  """

  metric: str = "eval/exact_ood"
  x_axis: str | None = None
  length_axis: str = "max"
  seed_axis: str = "seed"


@dataclasses.dataclass(frozen=True)
class PointResult:
  """One point's numbers read from its directory.

  status: "done", "partial (step k)" or "not started". final: summary keys at the final
  evaluation (empty unless done). best / best_step: the headline metric on the test grid at the
  evaluation with the highest validation metric so far, and its step (None before the first, or
  for a run without a validation set). problems: how many test problems the headline's region
  pools (None before the first evaluation). by_length: length -> exact
  match of the final grid. train_max: the longest training length on the length axis.
  commit: the git commit the run started from (env.json; "+dirty" with local changes).
  wall_s: seconds of the last (resumed) training call, from done.json.
  """

  name: str
  axes: Mapping[str, Any]
  workdir: str
  status: str
  final: Mapping[str, float]
  best: float | None
  best_step: int | None
  problems: int | None
  by_length: Mapping[int, float]
  train_max: int | None
  commit: str
  wall_s: float | None


def length_of(lengths: Sequence[int], axes: Sequence[str], length_axis: str) -> int:
  if length_axis == "max":
    return max(lengths)
  if length_axis not in axes:
    raise ValueError(f"report length_axis {length_axis!r} is not a length axis of the grid {list(axes)}; "
                     f"choose 'max' or one of them")
  return lengths[list(axes).index(length_axis)]


def exact_by_length(grid: Mapping[str, Any], length_axis: str) -> tuple[dict[int, float], int]:
  """({length: exact match over the grid's cells of that length, weighted by count}, the
  longest training length on that axis) from an eval/grid_<step>.json dict."""
  hits: dict[int, float] = {}
  counts: dict[int, int] = {}
  for cell in grid["cells"]:
    n = length_of(cell["lengths"], grid["axes"], length_axis)
    hits[n] = hits.get(n, 0.0) + cell["exact"] * cell["count"]
    counts[n] = counts.get(n, 0) + cell["count"]
  train_max = length_of([hi for _, hi in grid["train_ranges"]], grid["axes"], length_axis)
  return {n: hits[n] / max(counts[n], 1) for n in sorted(hits)}, train_max


def region_problems(grid: Mapping[str, Any], metric: str) -> int:
  """How many problems of an eval/grid_<step>.json dict the region of `metric` ("..._id",
  "..._ood" or "..._all") pools."""
  region = metric.rsplit("_", 1)[-1]
  return sum(c["count"] for c in grid["cells"] if region == "all" or c["in_distribution"] == (region == "id"))


def collect(name: str, axes: Mapping[str, Any], workdir: str, final_step: int, spec: Spec,
            best_metric: str = "val/exact_ood", done: bool | None = None) -> PointResult:
  """Reads one point's directory (see PointResult); best_metric: the run's checkpoint.best_metric;
  done: whether the run finished (None: whether a sweep wrote its done.json)."""
  logged = metrics_lib.read_metrics(workdir) if os.path.exists(os.path.join(workdir, "metrics.jsonl")) else []
  rows = [r for r in logged if spec.metric in r]
  done = os.path.exists(os.path.join(workdir, DONE_FILE)) if done is None else done
  commit, wall_s = "", None
  if os.path.exists(os.path.join(workdir, "env.json")):
    with open(os.path.join(workdir, "env.json")) as f:
      commit = json.load(f).get("git_commit", "")
  if os.path.exists(os.path.join(workdir, DONE_FILE)):
    with open(os.path.join(workdir, DONE_FILE)) as f:
      wall_s = json.load(f).get("wall_s")
  best_row = final_and_best(rows, best_metric)["best"]
  final, by_length, train_max, problems = {}, {}, None, None
  grid_path = os.path.join(workdir, "eval", f"grid_{rows[-1]['step']:07d}.json") if rows else ""
  if os.path.exists(grid_path):
    with open(grid_path) as f:
      problems = region_problems(json.load(f), spec.metric)
  if done:
    final = {k: v for r in rows if r["step"] == final_step for k, v in r.items() if k in SUMMARY_KEYS}
    with open(evaluate_lib.grid_prefix(os.path.join(workdir, "eval"), final_step) + ".json") as f:
      by_length, train_max = exact_by_length(json.load(f), spec.length_axis)
  status = "done" if done else (f"partial (step {logged[-1]['step']})" if logged else "not started")
  return PointResult(name=name, axes=dict(axes), workdir=workdir, status=status, final=final,
                     best=None if best_row is None else best_row[spec.metric],
                     best_step=None if best_row is None else int(best_row["step"]), problems=problems,
                     by_length=by_length, train_max=train_max, commit=commit, wall_s=wall_s)


def group_key(axes: Mapping[str, Any], spec: Spec) -> tuple[tuple[str, Any], ...]:
  """The axes that define a group: all but the seed axis."""
  return tuple((k, v) for k, v in axes.items() if k != spec.seed_axis)


def matching(references: Sequence[Reference], key: Sequence[tuple[str, Any]]) -> list[Reference]:
  """The references whose `where` labels all appear in the group key."""
  axes = dict(key)
  return [r for r in references if all(k in axes and axes[k] == v for k, v in r.where.items())]


def _groups(results: Sequence[PointResult], spec: Spec) -> dict[tuple, list[PointResult]]:
  groups: dict[tuple, list[PointResult]] = {}
  for r in results:
    groups.setdefault(group_key(r.axes, spec), []).append(r)
  return groups


def _pct(values: Sequence[float], how) -> str:
  return f"{100 * how(values):.1f}" if values else "–"


def _short_commit(commit: str) -> str:
  return commit[:12] + ("+dirty" if "dirty" in commit else "")


def _with_interval(value: float | None, n: int | None) -> str:
  """'33.8 [28.1, 40.0]': a value in % with its 95% Wilson interval over n problems ("–": none)."""
  if value is None:
    return "–"
  lo, hi = wilson_interval(value * (n or 0), n or 0)
  return f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _median_with_interval(members: Sequence[PointResult], value) -> str:
  """The median over seeds of value(member) (None: not there) with, for one seed, its Wilson
  interval, for several, the range over seeds."""
  pairs = [(value(m), m.problems) for m in members if value(m) is not None]
  if len(pairs) <= 1:
    return _with_interval(*(pairs[0] if pairs else (None, None)))
  values = [v for v, _ in pairs]
  return f"{100 * statistics.median(values):.1f} (seeds {100 * min(values):.1f}–{100 * max(values):.1f})"


def _label(key: Sequence[tuple[str, Any]]) -> str:
  return ", ".join(f"{k}={v}" for k, v in key) or "all"


def summary_table(results: Sequence[PointResult], spec: Spec, references: Sequence[Reference]) -> list[list[str]]:
  """Markdown table rows (header first): one per group, ours beside the paper's."""
  digit = spec.metric.replace("exact", "digit")
  axes = [k for k, _ in next(iter(_groups(results, spec)))]
  header = [*axes, "seeds done", "final (median) [95% CI]", "final (best seed)",
            "best by validation (median) [95% CI]", f"{digit.split('/')[-1]} final (median)", "paper"]
  rows = [header]
  for key, members in _groups(results, spec).items():
    finals = [m.final[spec.metric] for m in members if spec.metric in m.final]
    digits = [m.final[digit] for m in members if digit in m.final]
    papers = "; ".join(f"{r.label()} {r.source}" + (f" [{r.setting}]" if r.setting else "")
                       for r in matching(references, key)) or "–"
    rows.append([*(str(v) for _, v in key), f"{len(finals)}/{len(members)}",
                 _median_with_interval(members, lambda m: m.final.get(spec.metric)), _pct(finals, max),
                 _median_with_interval(members, lambda m: m.best if m.status == "done" else None),
                 _pct(digits, statistics.median), papers])
  return rows


def _markdown(rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
  lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]]
  return "\n".join(lines)


def _save_percent_plot(fig: Figure, ax, path: str, xlabel: str, ylabel: str, title: str) -> None:
  """Labels a plot of percentages (y from 0 to 100), adds the legend and writes it to `path`."""
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_ylim(-2, 102)
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7, loc="best")
  fig.tight_layout()
  fig.savefig(path)


def plot_lengths(results: Sequence[PointResult], spec: Spec, references: Sequence[Reference], path: str) -> bool:
  """Exact match (%) vs length, one line per group (mean over finished seeds), the longest
  training length dashed. Returns False (no file) when no point is finished."""
  fig = Figure(figsize=(7, 4.5), dpi=120)
  ax = fig.subplots()
  longest = max((n for r in results for n in r.by_length), default=0)
  beyond = []  # paper numbers at lengths past ours: drawn at the right edge, labelled
  for i, (key, members) in enumerate(_groups(results, spec).items()):
    done = [m for m in members if m.by_length]
    if not done:
      continue
    lengths = sorted(done[0].by_length)
    mean = [100 * statistics.mean(m.by_length.get(n, 0.0) for m in done) for n in lengths]
    line, = ax.plot(lengths, mean, marker=".", label=_label(key) + (f" ({len(done)} seeds)" if len(done) > 1 else ""))
    for r in matching(references, key):
      if r.length is not None and r.length <= longest:
        ax.plot([r.length], [100 * r.value], "x", color=line.get_color(), markersize=9)
      elif r.length is not None:
        beyond.append((r, line.get_color()))
    ax.axvline(done[0].train_max + 0.5, color="grey", linestyle="--", linewidth=0.8)
  if not longest:
    return False
  for k, (r, color) in enumerate(beyond):
    ax.plot([longest + 1], [100 * r.value], ">", color=color, markersize=8)
    ax.annotate(f"paper: {100 * r.value:.0f}% at {r.length}", (longest + 1, 100 * r.value), xytext=(-8, -10 - 9 * k),
                textcoords="offset points", ha="right", fontsize=7, color=color)
  papers = "; x: paper; >: paper, longer" if references else ""
  _save_percent_plot(fig, ax, path, f"length ({spec.length_axis})", "exact match (%)",
                     f"exact match vs length (dashed: longest training length{papers})")
  return True


def plot_x_axis(results: Sequence[PointResult], spec: Spec, references: Sequence[Reference], path: str) -> bool:
  """The headline metric (median over seeds) vs Spec.x_axis, one line per group of the other
  axes, paper numbers as crosses. Returns False (no file) when no point is finished."""
  lines: dict[tuple, dict[float, list[float]]] = {}
  for r in results:
    if spec.metric in r.final:
      key = tuple(kv for kv in group_key(r.axes, spec) if kv[0] != spec.x_axis)
      lines.setdefault(key, {}).setdefault(float(r.axes[spec.x_axis]), []).append(r.final[spec.metric])
  if not lines:
    return False
  fig = Figure(figsize=(7, 4.5), dpi=120)
  ax = fig.subplots()
  for key, by_x in lines.items():
    xs = sorted(by_x)
    line, = ax.plot(xs, [100 * statistics.median(by_x[x]) for x in xs], marker="o", label=_label(key))
    for ref in matching(references, key):
      if ref.x is not None:
        ax.plot([ref.x], [100 * ref.value], "x", color=line.get_color(), markersize=9)
  ax.set_xscale("log")
  _save_percent_plot(fig, ax, path, spec.x_axis, f"{METRIC_NAMES.get(spec.metric, spec.metric)} (%)",
                     f"{spec.metric} vs {spec.x_axis} (median over seeds; x: paper)")
  return True


def write_csv(results: Sequence[PointResult], spec: Spec, references: Sequence[Reference], path: str) -> None:
  """One row per point: its axes, status, final summary metrics, best headline value, and the
  paper's matching numbers."""
  axes = list(dict.fromkeys(k for r in results for k in r.axes))
  fields = [*axes, "point", "status", *SUMMARY_KEYS, f"{spec.metric} 95% low", f"{spec.metric} 95% high",
            "problems", f"best-by-validation {spec.metric}", "best-by-validation step",
            f"best-by-validation {spec.metric} 95% low", f"best-by-validation {spec.metric} 95% high", "paper value",
            "paper source", "workdir"]
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(fields)
    for r in results:
      refs = matching(references, group_key(r.axes, spec))
      interval = lambda value: ["", ""] if value is None else list(wilson_interval(value * (r.problems or 0),
                                                                                   r.problems or 0))
      writer.writerow([*(r.axes.get(k, "") for k in axes), r.name, r.status,
                       *(r.final.get(k, "") for k in SUMMARY_KEYS), *interval(r.final.get(spec.metric)),
                       "" if r.problems is None else r.problems, "" if r.best is None else r.best,
                       "" if r.best_step is None else r.best_step, *interval(r.best), "; ".join(str(x.value) for x in refs),
                       "; ".join(x.source for x in refs), r.workdir])


def write(workdir: str, planned: Sequence[Any], spec: Spec, references: Sequence[Reference], *,
          title: str) -> str:
  """Writes workdir/report.md, report.csv and the plots for the planned points (objects with
  .point (axes, name), .cfg and .workdir, see arithlab.sweep.plan); returns report.md's path."""
  if spec.metric not in SUMMARY_KEYS:
    raise ValueError(f"report metric {spec.metric!r} unknown; choose one of: {', '.join(SUMMARY_KEYS)}")
  results = [collect(p.point.name, p.point.axes, p.workdir, p.cfg.train.steps, spec,
                     p.cfg.get("checkpoint", {}).get("best_metric", "val/exact_ood")) for p in planned]
  os.makedirs(workdir, exist_ok=True)
  write_csv(results, spec, references, os.path.join(workdir, "report.csv"))
  done = sum(r.status == "done" for r in results)
  parts = [f"# Sweep report: `{title}`", "",
           f"Rebuild: `python -m arithlab.sweep --config={title} --workdir=DIR` (one point: `--point=I`; "
           "each point's exact command is in its point.json).", "",
           f"{done} of {len(results)} points finished. Headline: `{spec.metric}` "
           f"({METRIC_NAMES[spec.metric]}), in %, at the final step and at the checkpoint the validation set "
           "chose as best (never chosen on the test grid); median and best over seeds. In brackets: the 95% "
           "Wilson interval over the test problems of the metric's region (one seed), or the range over seeds "
           "(each seed's interval is in the point list). `paper` is the paper's number for that setting "
           "(see the list below).",
           "", _markdown(summary_table(results, spec, references)), ""]
  if plot_lengths(results, spec, references, os.path.join(workdir, "report_length.png")):
    parts += ["![exact match vs length](report_length.png)", ""]
  if spec.x_axis and plot_x_axis(results, spec, references, os.path.join(workdir, f"report_{spec.x_axis}.png")):
    parts += [f"![{spec.metric} vs {spec.x_axis}](report_{spec.x_axis}.png)", ""]
  parts += ["## The paper's numbers", "",
            _markdown([["where", "value", "source", "paper's setting"]] + [
                [_label(tuple(r.where.items())), r.label(), r.source, r.setting or "–"] for r in references]),
            "", "## Points", "",
            _markdown([["point", "status", f"final {spec.metric} [95% CI]", "best by validation [95% CI] (step)",
                        "train s", "commit", "directory"]] + [
                [r.name, r.status, _with_interval(r.final.get(spec.metric), r.problems),
                 "–" if r.best is None else f"{_with_interval(r.best, r.problems)} ({r.best_step})",
                 "–" if r.wall_s is None else f"{r.wall_s:.0f}", _short_commit(r.commit),
                 os.path.relpath(r.workdir, workdir)] for r in results]), ""]
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(parts))
  return path


@dataclasses.dataclass(frozen=True)
class RunResult:
  """One run directory in a comparison: its numbers read like a sweep point's (`point`, with
  axes {"run": its name}; final and by_length from its last evaluation), its config as dotted
  leaves, and its last train metrics row (without "step")."""

  point: PointResult
  config: Mapping[str, Any]
  last_train: Mapping[str, float]


def check_run_dir(workdir: str) -> None:
  """Raises ValueError saying why `workdir` is not a run directory (one that arithlab.main
  trained: it holds config.json and metrics.jsonl)."""
  if not os.path.isdir(workdir):
    raise ValueError(f"run directory {workdir!r} does not exist")
  if os.path.isdir(os.path.join(workdir, "points")):
    raise ValueError(f"{workdir!r} is a sweep directory, not a run: compare its points with "
                     f"--runs='{os.path.join(workdir, 'points', '*')}' (or read its report.md)")
  missing = [f for f in ("config.json", "metrics.jsonl") if not os.path.isfile(os.path.join(workdir, f))]
  if missing:
    raise ValueError(f"{workdir!r} is not a run directory: it has no {' and no '.join(missing)} (a run directory "
                     "is the --workdir of `python -m arithlab.main` once it has logged a step)")


def collect_run(workdir: str, name: str, spec: Spec) -> RunResult:
  """Reads a run directory (see RunResult): status "done" when its last evaluation is at
  train.steps, else "partial (step k)".

  Raises:
    ValueError: when workdir is not a run directory (`check_run_dir`).
  """
  check_run_dir(workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    config = config_lib.leaves(json.load(f))
  rows = metrics_lib.read_metrics(workdir)
  trains = [r for r in rows if "loss" in r]
  final_step = config.get("train.steps")
  done = any(r["step"] == final_step and spec.metric in r for r in rows)
  point = collect(name, {"run": name}, workdir, final_step, spec,
                  config.get("checkpoint.best_metric", "val/exact_ood"), done=done)
  return RunResult(point, config, {k: v for k, v in (trains[-1] if trains else {}).items() if k != "step"})


def config_differences(runs: Sequence[RunResult]) -> list[list[str]]:
  """Markdown table rows (header first): one per config field whose value is not the same in
  every run ("–": the run's config lacks it), one column per run."""
  fields = sorted({k for r in runs for k in r.config})
  show = lambda v: "–" if v is None else json.dumps(v) if not isinstance(v, str) else v
  rows = [["config field", *(r.point.name for r in runs)]]
  for field in fields:
    values = [show(r.config.get(field)) for r in runs]
    if len(set(values)) > 1:
      rows.append([field, *values])
  return rows


def results_table(runs: Sequence[RunResult], spec: Spec) -> list[list[str]]:
  """Markdown table rows (header first): per run its status, last train loss and exact match,
  the summary keys of its last evaluation, the best value of spec.metric, and exact match per
  length of its last eval grid (lengths past its training lengths marked with *)."""
  keys = [k for k in SUMMARY_KEYS if any(k in r.point.final for r in runs)]
  lengths = sorted({n for r in runs for n in r.point.by_length})
  rows = [["run", "status", "loss", "train exact", *keys, f"best {spec.metric} (step)",
           *(f"len {n}" if spec.length_axis == "max" else f"{spec.length_axis}={n}" for n in lengths), "commit"]]
  for r in runs:
    p = r.point
    loss = f"{r.last_train['loss']:.4f}" if "loss" in r.last_train else "–"
    by_length = [(_pct([p.by_length[n]], max) + ("*" if n > p.train_max else "")) if n in p.by_length else "–"
                 for n in lengths]
    rows.append([p.name, p.status, loss, _pct([r.last_train["exact_match"]], max) if "exact_match" in r.last_train
                 else "–", *(_pct([p.final[k]], max) if k in p.final else "–" for k in keys),
                 "–" if p.best is None else f"{100 * p.best:.1f} ({p.best_step})", *by_length, _short_commit(p.commit)])
  return rows


def plot_steps(runs: Sequence[RunResult], spec: Spec, path: str) -> bool:
  """spec.metric (%) vs step, one line per run. Returns False (no file) when no run has evaluated."""
  fig = Figure(figsize=(7, 4.5), dpi=120)
  ax = fig.subplots()
  drawn = False
  for r in runs:
    rows = [row for row in metrics_lib.read_metrics(r.point.workdir) if spec.metric in row]
    if rows:
      ax.plot([row["step"] for row in rows], [100 * row[spec.metric] for row in rows], marker=".", label=r.point.name)
      drawn = True
  if not drawn:
    return False
  _save_percent_plot(fig, ax, path, "step", f"{METRIC_NAMES.get(spec.metric, spec.metric)} (%)",
                     f"{spec.metric} at each evaluation")
  return True


def run_dirs(patterns: Sequence[str]) -> list[str]:
  """The directories `patterns` name, in order (a pattern with *, ? or [ is expanded, sorted).

  Raises:
    ValueError: naming --runs for an empty list, a pattern that matches nothing or a repeated directory.
  """
  dirs = []
  for pattern in patterns:
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not matches:
      raise ValueError(f"--runs: {pattern!r} matches no directory")
    dirs += [m.rstrip("/") for m in matches]
  if not dirs:
    raise ValueError("--runs is empty: name run directories, e.g. --runs=runs/a,runs/b")
  repeated = sorted({d for d in dirs if dirs.count(d) > 1})
  if repeated:
    raise ValueError(f"--runs names {', '.join(repeated)} more than once")
  return dirs


def compare(workdirs: Sequence[str], spec: Spec, out: str | None = None) -> str:
  """The comparison of run directories as markdown (see the module docstring); with `out`,
  also written to out/compare.md beside the plots compare_length.png and compare_steps.png.

  Raises:
    ValueError: an unknown spec.metric, or a directory that is not a run (`check_run_dir`).
  """
  if spec.metric not in SUMMARY_KEYS:
    raise ValueError(f"--metric={spec.metric!r} unknown; choose one of: {', '.join(SUMMARY_KEYS)}")
  runs = [collect_run(d, d, spec) for d in workdirs]
  differences = config_differences(runs)
  parts = ["# Run comparison", "", f"Runs: {', '.join(f'`{d}`' for d in workdirs)}.", "", "## Config differences", "",
           _markdown(differences) if len(differences) > 1 else "The runs' configs are identical.", "",
           "## Results", "",
           f"Last train row and last evaluation, in %; `len N`: exact match of the last eval grid's cells of "
           f"length N ({'the largest of their lengths' if spec.length_axis == 'max' else spec.length_axis}; * past "
           "the run's training lengths).", "", _markdown(results_table(runs, spec)), ""]
  if out:
    os.makedirs(out, exist_ok=True)
    if plot_lengths([r.point for r in runs], spec, (), os.path.join(out, "compare_length.png")):
      parts += ["![exact match vs length](compare_length.png)", ""]
    if plot_steps(runs, spec, os.path.join(out, "compare_steps.png")):
      parts += [f"![{spec.metric} vs step](compare_steps.png)", ""]
    with open(os.path.join(out, "compare.md"), "w") as f:
      f.write("\n".join(parts))
  return "\n".join(parts)


def define_flags() -> None:
  """The command-line flags of `python -m arithlab.report` (defined only when this module runs
  as the program: the sweep imports it as a library)."""
  flags.DEFINE_list("runs", None, "run directories to compare, comma-separated; a glob (quoted) expands, e.g. "
                    "'runs/lee2023/points/*'")
  flags.DEFINE_string("metric", "eval/exact_ood", f"the headline metric, one of: {', '.join(SUMMARY_KEYS)}")
  flags.DEFINE_string("length_axis", "max", "a cell's length in the by-length columns: 'max' of its lengths, "
                      "or one task length axis (e.g. len_0)")
  flags.DEFINE_string("out", None, "write compare.md and the plots here (default: print only)")
  flags.mark_flags_as_required(["runs"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  try:
    print(compare(run_dirs(f.runs), Spec(metric=f.metric, length_axis=f.length_axis), f.out))
  except ValueError as e:
    raise SystemExit(f"arithlab.report: {e}") from e


if __name__ == "__main__":
  define_flags()
  app.run(main)
