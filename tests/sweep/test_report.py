"""Reports built from point directories: exact match by length, seeds pooled (median, best),
the paper's numbers beside ours, unfinished points listed, plots written; and the comparison
of any run directories (`python -m arithlab.report --runs=...`)."""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys
import types

import ml_collections
import numpy as np
import pytest

from arithlab import config, report, sweep
from arithlab.train import evaluate, loop
from arithlab.train import metrics as metrics_lib

REPO = pathlib.Path(__file__).resolve().parents[2]

STEPS = 10
CELLS = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 3)]


def fake_point(root, axes, exact_C, *, done=True, best=None):
  """A point directory as the train loop and the runner leave it: eval rows at steps 5 and 10; the
  validation set prefers step 5 when `best` (its test-grid score) is given, else step 10."""
  point = sweep.Point(axes, {})
  workdir = os.path.join(root, sweep.slug(point))
  writer = metrics_lib.MetricsWriter(workdir)
  result = evaluate.GridResult(axes=["len_0", "len_1"], cells=CELLS, exact_C=np.asarray(exact_C, float),
                               digit_C=np.asarray(exact_C, float), count_C=np.array([10, 10, 10, 10, 10, 30]),
                               in_box_C=np.array([c[0] <= 2 and c[1] <= 2 for c in CELLS]),
                               train_ranges=[(1, 2), (1, 2)], step=STEPS)
  early = evaluate.GridResult(**{**result.__dict__, "step": 5})
  writer.write(5, {"eval/exact_ood": best if best is not None else 0.0, "val/exact_ood": 0.9 if best else 0.1})
  evaluate.save(early, os.path.join(workdir, "eval"))
  if done:
    writer.write(STEPS, {**result.summary(), "val/exact_ood": 0.5})
    evaluate.save(result, os.path.join(workdir, "eval"))
    metrics_lib.write_json(os.path.join(workdir, sweep.DONE), {"step": STEPS, "wall_s": 12.3})
    metrics_lib.write_json(os.path.join(workdir, "env.json"), {"git_commit": "0123456789abcdef+dirty"})
  cfg = ml_collections.ConfigDict({"train": {"steps": STEPS}})
  return types.SimpleNamespace(point=point, cfg=cfg, workdir=workdir)


def test_exact_by_length_weights_cells_by_count():
  grid = {"axes": ["len_0", "len_1"], "train_ranges": [[1, 2], [1, 2]],
          "cells": [{"lengths": [1, 3], "exact": 1.0, "count": 10}, {"lengths": [3, 3], "exact": 0.0, "count": 30},
                    {"lengths": [2, 1], "exact": 0.5, "count": 10}]}
  assert report.exact_by_length(grid, "max") == ({2: 0.5, 3: 0.25}, 2)
  assert report.exact_by_length(grid, "len_0") == ({1: 1.0, 2: 0.5, 3: 0.0}, 2)
  with pytest.raises(ValueError, match="length_axis 'count'.*'len_0'"):
    report.exact_by_length(grid, "count")


def test_references_match_groups_by_their_labels():
  refs = [report.Reference({"format": "plain"}, 0.5, "A"), report.Reference({}, 0.7, "B"),
          report.Reference({"format": "plain", "samples": 10}, 0.9, "C")]
  assert [r.source for r in report.matching(refs, (("format", "plain"), ("samples", 10)))] == ["A", "B", "C"]
  assert [r.source for r in report.matching(refs, (("format", "reverse"),))] == ["B"]
  assert report.Reference({}, 0.861, "x", approximate=True).label() == "86.1% (approx., unverified)"
  assert report.Reference({}, 1.0, "x", verified=True).label() == "100.0%"


def test_report_pools_seeds_and_puts_the_paper_beside_ours(tmp_path):
  ood = [0.0, 0.0, 0.0, 0.0, 1.0, 0.5]  # OOD cells (3, 1), (3, 3) of 10 and 30 problems: 25/40 = 0.625
  planned = [fake_point(tmp_path, {"format": "plain", "samples": 100, "seed": 0}, [1, 1, 1, 1, 0.2, 0.0], best=0.3),
             fake_point(tmp_path, {"format": "plain", "samples": 100, "seed": 1}, ood),
             fake_point(tmp_path, {"format": "plain", "samples": 1000, "seed": 0}, ood),
             fake_point(tmp_path, {"format": "reverse", "samples": 100, "seed": 0}, ood, done=False)]
  refs = (report.Reference({"format": "plain"}, 0.86, "Lee et al. 2023, Figure 1", "at 10k samples",
                           approximate=True, x=10000),)
  spec = report.Spec(metric="eval/exact_ood", x_axis="samples")
  path = report.write(str(tmp_path), planned, spec, refs, title="toy")
  text = open(path).read()
  row = next(line for line in text.splitlines() if line.startswith("| plain | 100 |"))
  # final ood (pooled over the 40 OOD problems): seed 0 = 2/40, seed 1 = 25/40 -> median 33.75, best 62.5;
  # best by validation: step 5 of seed 0 (0.3), step 10 of seed 1 (0.625), never the test grid's best
  assert row.split(" | ")[2:7] == ["2/2", "33.8 (seeds 5.0–62.5)", "62.5", "46.2 (seeds 30.0–62.5)", "33.8"]
  assert "86.0% (approx., unverified) Lee et al. 2023, Figure 1 [at 10k samples]" in row
  assert "| reverse | 100 | 0/1 |" in text and "partial (step 5)" in text
  assert "3 of 4 points finished" in text and "--config=toy --workdir=DIR" in text
  assert "| 1000 | 1/1 | 62.5 [47.0, 75.8] |" in text  # one seed: its 95% Wilson interval over 40 problems
  assert "| done | 5.0 [1.4, 16.5] | 30.0 [18.1, 45.4] (5) | 12 | 0123456789ab+dirty | format-plain_samples-100_seed-0 |" in text
  for image in ("report_length.png", "report_samples.png"):
    assert image in text and os.path.getsize(tmp_path / image) > 0
  with open(tmp_path / "report.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["status"] for r in rows] == ["done", "done", "done", "partial (step 5)"]
  assert float(rows[1]["eval/exact_ood"]) == 0.625 and rows[0]["paper value"] == "0.86"
  assert rows[3]["eval/exact_ood"] == "" and rows[3]["best-by-validation eval/exact_ood"] == "0.0"
  assert float(rows[1]["eval/exact_ood 95% low"]) == pytest.approx(0.470, abs=1e-3) and rows[1]["problems"] == "40"
  assert rows[0]["best-by-validation step"] == "5" and rows[1]["best-by-validation step"] == "10"


def test_unknown_metric_is_refused(tmp_path):
  with pytest.raises(ValueError, match="'eval/accuracy' unknown.*eval/exact_id"):
    report.write(str(tmp_path), [], report.Spec(metric="eval/accuracy"), (), title="x")


def test_every_summary_key_has_a_readable_name():
  assert set(report.METRIC_NAMES) == set(evaluate.SUMMARY_KEYS)


def micro_config():
  """A seconds-long run: the sweep's micro budget, two steps, evaluated at the end (test_runner's
  toy sweep, so that the compilation cache already holds its programs)."""
  cfg = config.default_config()
  cfg.data.train_lengths = {"len_0": (1, 2), "len_1": (1, 2)}
  cfg.data.format = "reverse_answer"
  sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  cfg.train.steps = 2
  return cfg


def test_report_compares_any_run_directories(tmp_path):
  a, b, c = (str(tmp_path / name) for name in ("a", "b", "c"))
  cfg = micro_config()
  loop.train(cfg, a)
  shutil.copytree(a, c, ignore=shutil.ignore_patterns("eval", "checkpoints"))  # a's run killed after step 1
  with open(os.path.join(c, "metrics.jsonl"), "w") as f:
    f.write(json.dumps(metrics_lib.read_metrics(a)[0]) + "\n")
  cfg.data.format = "plain"
  loop.train(cfg, b)
  out = tmp_path / "compare"
  result = subprocess.run([sys.executable, "-m", "arithlab.report", f"--runs={a},{b}", f"--out={out}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  text = result.stdout
  assert text.strip() == (out / "compare.md").read_text().strip()
  differences = text.split("## Config differences")[1].split("## Results")[0]
  assert f"| config field | {a} | {b} |" in differences
  assert differences.count("\n| ") == 2 and "| data.format | reverse_answer | plain |" in differences
  header = next(line for line in text.splitlines() if line.startswith("| run |"))
  assert header.endswith("| len 2 | len 3 | commit |") and "| eval/exact_ood |" in header
  for run in (a, b):
    row = next(line for line in text.splitlines() if line.startswith(f"| {run} |")).split(" | ")
    assert row[1] == "done" and row[-2].endswith("*") and not row[-3].endswith("*")  # length 3 is past training
  for image in ("compare_length.png", "compare_steps.png"):
    assert image in text and (out / image).stat().st_size > 0

  spec = report.Spec(metric="eval/exact_id", length_axis="len_0")
  partial = report.compare([a, c], spec)
  assert f"| {c} | partial (step 1) | " in partial and "| len_0=2 | len_0=3 |" in partial
  assert "The runs' configs are identical." in partial
  assert report.run_dirs([str(tmp_path / "[ab]")]) == [a, b]
  os.makedirs(tmp_path / "sweep" / "points")
  for runs, error in [([str(tmp_path / "x*")], "matches no directory"), ([a, a], "names .*a more than once"),
                      ([a, str(tmp_path / "nope")], "run directory '.*nope' does not exist"),
                      ([os.path.join(a, "eval")], r"not a run directory: it has no config.json and no metrics.jsonl"),
                      ([str(tmp_path / "sweep")], r"is a sweep directory, not a run: compare its points with "
                                                  r"--runs='.*sweep/points/\*'")]:
    with pytest.raises(ValueError, match=error):
      report.compare(report.run_dirs(runs), spec)
  with pytest.raises(ValueError, match="--metric='loss' unknown; choose one of: eval/exact_id"):
    report.compare([a], report.Spec(metric="loss"))
  failed = subprocess.run([sys.executable, "-m", "arithlab.report", f"--runs={a},{tmp_path / 'nope'}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert failed.returncode == 1 and failed.stderr.strip().endswith("does not exist")
