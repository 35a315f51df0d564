# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Reproduce a table
#
# The sweeps in `experiments/` re-run a paper's comparison with one command and write a
# report that puts the paper's numbers beside ours. Here: the committed `:small` report of
# Lee et al. 2023 ("Teaching Arithmetic to Small Transformers": 3-digit addition accuracy
# against the number of training samples, per format), plotted against the paper's
# numbers, then one more point of the same sweep trained in the notebook.
#
# The report was written by
# `python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=...`.
# With `ARITHLAB_NOTEBOOK_SMALL=1` (the tests) the new point uses the `:micro` budget
# (seconds, nothing learned).

# %%
# Set-up. In Colab: clone arithlab (code and experiments/) and install it. Locally (inside a
# checkout after `pip install -e .`) this only moves to the repository root.
import os
import subprocess
import sys
from pathlib import Path

REPO_URL = "https://github.com/arithlab/arithlab"  # @param {type:"string"}


def find_root() -> Path | None:
  """The arithlab checkout at or above the working directory, or in ./arithlab."""
  candidates = (Path.cwd(), *Path.cwd().parents, Path.cwd() / "arithlab")
  return next((p for p in candidates if (p / "experiments").is_dir() and (p / "data_gen").is_dir()), None)


if find_root() is None and "google.colab" in sys.modules:
  subprocess.run(["git", "clone", "--depth=1", REPO_URL, "arithlab"], check=True)
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "arithlab"], check=True)
ROOT = find_root()
if ROOT is None:
  raise RuntimeError("open this notebook inside an arithlab checkout (pip install -e .), or in Colab")
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))  # importable at once, without restarting the kernel after the install

SMALL = os.environ.get("ARITHLAB_NOTEBOOK_SMALL") == "1"  # tests: a seconds-long run
RUNS = Path(os.environ.get("ARITHLAB_RUNS", "runs/notebooks"))  # where the run directories go

# %%
import csv
import statistics
import types

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from arithlab import report, sweep

EXPERIMENT = "experiments/lee2023.py"


def committed_report(spec: str) -> Path:
  """The directory under experiments/results/ whose report.md is the sweep `spec`'s (its title
  line names the --config it was run with)."""
  for path in sorted(Path("experiments/results").glob("**/report.md")):
    if f"{spec}`" in path.read_text().splitlines()[0]:
      return path.parent
  raise FileNotFoundError(f"no report of {spec} is committed under experiments/results/")


RESULTS = committed_report(f"{EXPERIMENT}:small")
print(f"report: {RESULTS}")

# %% [markdown]
# ## The committed report
#
# `report.md` groups the points by setting (median and best over seeds, the paper beside
# them); `report.csv` has one row per sweep point: its axes (format, samples, seed), status,
# the evaluation summary at the final step and the paper's number for its setting. The
# experiment file holds the paper's numbers as data (`REFERENCE`, each with its source) and
# what the report shows (`REPORT`: the headline metric and the x axis).

# %%
module, _ = sweep.load_experiment(EXPERIMENT)
spec = module.REPORT
with open(RESULTS / "report.csv", newline="") as f:
  rows = list(csv.DictReader(f))
axes = list(rows[0])[:list(rows[0]).index("point")]  # the columns before "point" are the sweep axes
print(f"{len(rows)} points, axes {axes}; headline {spec.metric!r}; x axis {spec.x_axis!r}")


def label_of(value: str):
  """A CSV cell as the sweep's axis label (an int or float where it reads as one)."""
  for kind in (int, float):
    try:
      return kind(value)
    except ValueError:
      pass
  return value


def name(key: tuple) -> str:
  """"format=reverse, samples=1000" for a group's (axis, label) pairs."""
  return ", ".join(f"{k}={v}" for k, v in key)


def ours_by_group(rows: list[dict]) -> dict[tuple, float]:
  """{group (axis, label) pairs without the seed axis: median over finished seeds of the headline}."""
  groups: dict[tuple, list[float]] = {}
  for row in rows:
    if row["status"] == "done" and row[spec.metric] != "":
      key = tuple((k, label_of(row[k])) for k in axes if k != spec.seed_axis)
      groups.setdefault(key, []).append(float(row[spec.metric]))
  return {key: statistics.median(values) for key, values in groups.items()}


ours = ours_by_group(rows)
display(Markdown((RESULTS / "report.md").read_text().split("![")[0]))  # its summary table, without the plots

# %% [markdown]
# ## Ours against the paper's numbers
#
# Left: the headline metric against the number of training samples, one line per format
# (median over seeds), the paper's numbers as crosses of the same colour where the paper
# places them. Right: each format at its largest sample size beside the paper's number
# for it (the paper reports its plateau).

# %%
def draw(ours: dict[tuple, float], extra: dict[tuple, float] | None = None) -> None:
  """The two comparison plots; `extra`: newly trained points, drawn as stars."""
  lines: dict[tuple, dict[float, float]] = {}
  for key, value in ours.items():
    rest = tuple(kv for kv in key if kv[0] != spec.x_axis)
    lines.setdefault(rest, {})[float(dict(key)[spec.x_axis])] = value
  fig, (line_ax, bar_ax) = plt.subplots(1, 2, figsize=(12, 4.6))
  colours = {}
  for rest, by_x in lines.items():
    xs = sorted(by_x)
    (line,) = line_ax.plot(xs, [100 * by_x[x] for x in xs], marker="o", label=name(rest))
    colours[rest] = line.get_color()
    for ref in report.matching(module.REFERENCE, rest):
      if ref.x is not None:
        line_ax.plot([ref.x], [100 * ref.value], "x", color=line.get_color(), markersize=10, mew=2)
  for key, value in (extra or {}).items():
    rest = tuple(kv for kv in key if kv[0] not in (spec.x_axis, spec.seed_axis))
    line_ax.plot([float(dict(key)[spec.x_axis])], [100 * value], "*", color=colours.get(rest, "black"),
                 markersize=16, markeredgecolor="black", label=f"new: {name(key)}")
  line_ax.set(xscale="log", xlabel=f"{spec.x_axis} (training problems)", ylabel=f"{spec.metric} (%)",
              ylim=(-2, 102), title="ours (lines) and the paper (x)")
  line_ax.legend(fontsize=7)

  rests = list(lines)
  at = [max(lines[r]) for r in rests]
  paper = [next((100 * ref.value for ref in report.matching(module.REFERENCE, r)), float("nan")) for r in rests]
  positions = range(len(rests))
  bar_ax.bar([i - 0.2 for i in positions], [100 * lines[r][x] for r, x in zip(rests, at)], width=0.4,
             color=[colours[r] for r in rests], label="ours")
  bar_ax.bar([i + 0.2 for i in positions], paper, width=0.4, color="lightgrey", edgecolor="black", label="paper")
  bar_ax.set_xticks(list(positions), [f"{name(r)}\n{spec.x_axis}={x:g}" for r, x in zip(rests, at)],
                    fontsize=7, rotation=30, ha="right")
  bar_ax.set(ylim=(0, 105), xlabel="setting", ylabel=f"{spec.metric} (%)",
             title="largest sample size: ours vs the paper")
  bar_ax.legend(fontsize=8)
  fig.suptitle(f"{EXPERIMENT}: {spec.metric}")
  fig.tight_layout()
  plt.show()


draw(ours)

# %% [markdown]
# ## One more point
#
# A sample size the sweep does not have: the reversed format with 5,000 training samples,
# one seed. `sweep.plan` resolves its config and run directory exactly as the sweep does
# and `sweep.run_point` trains it (a finished point is skipped, a killed one resumes from
# its checkpoint). From a shell, part of a sweep runs with
# `python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=DIR --only=format=reverse`,
# and any field changes for every point with `--config.<field>=<value>`.

# %%
budget = "micro" if SMALL else "small"
extra_point = sweep.product(
    sweep.axis("format", {"reverse": {"data.format": module.FORMATS["reverse"]}}),
    module.samples_axis([5000]),
    sweep.field_axis("seed", "seed", [0]))[0]
one_point = types.SimpleNamespace(__name__="one_more_point", get_config=module.get_config,
                                  get_sweep=lambda arg: [extra_point])
sweep_dir = str(RUNS / "lee2023_one_more")
(planned,) = sweep.plan(one_point, budget, sweep_dir)
print(f"{planned.point.name} -> {planned.workdir}")
sweep.run_point(planned, sweep.point_command(f"{EXPERIMENT}:{budget}", sweep_dir, 0, []))
new = report.collect(planned.point.name, planned.point.axes, planned.workdir, planned.cfg.train.steps, spec)
print(f"{new.status}: {spec.metric} = {100 * new.final[spec.metric]:.1f}%")

# %%
draw(ours, {tuple(planned.point.axes.items()): new.final[spec.metric]})
