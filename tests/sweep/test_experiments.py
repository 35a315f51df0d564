"""Every experiment config: its :micro sweep runs end to end through the sweep runner, every
budget's points resolve to valid run configs, and a bad argument is refused by name."""

import csv
import pathlib

import pytest

from arithlab import config, report, sweep
from data_gen import pipeline

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = ("lee2023.py", "shen2023.py", "awasthi2023.py", "singh2024.py", "ruoss2023.py", "mcleish2024.py",
               "cho2024.py", "zhou2024.py", "zhu2025.py", "encodings_addition.py", "rope_scaling.py")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_micro_sweep_runs_end_to_end(name, tmp_path):
  spec = f"{REPO / 'experiments' / name}:micro"
  assert sweep.run(spec, str(tmp_path)) == []
  module, _ = sweep.load_experiment(spec)
  planned = sweep.plan(module, "micro", str(tmp_path))
  assert all(sweep.is_done(p.workdir) for p in planned)
  with open(tmp_path / "report.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["status"] for r in rows] == ["done"] * len(planned)
  assert all(0.0 <= float(r[module.REPORT.metric]) <= 1.0 for r in rows)
  text = (tmp_path / "report.md").read_text()
  for ref in module.REFERENCE:
    assert ref.label() in text and ref.source in text
  assert (tmp_path / "report_length.png").exists()


@pytest.mark.parametrize("arg", [None, "small"])
def test_every_budget_resolves_to_valid_configs(arg, tmp_path):
  for name in EXPERIMENTS:
    module, _ = sweep.load_experiment(str(REPO / "experiments" / name))
    planned = sweep.plan(module, arg, str(tmp_path))
    for p in planned:
      config.validate(p.cfg, device_count=1)
      assert set(p.point.axes) >= {module.REPORT.seed_axis}
    for data_cfg in {p.cfg.data.to_json(): p.cfg.data for p in planned}.values():
      pipeline.validate_data_config(data_cfg)
    assert all(isinstance(r, report.Reference) and 0 <= r.value <= 1 and r.source for r in module.REFERENCE)


@pytest.mark.parametrize("arg", [None, "small"])
def test_every_budget_evaluates_enough_problems(arg, tmp_path):
  """Full budgets: >= 100 problems per cell; :small: every reported length pools >= 100; and the
  best checkpoint is chosen on the validation set."""
  for name in EXPERIMENTS:
    module, _ = sweep.load_experiment(str(REPO / "experiments" / name))
    for p in sweep.plan(module, arg, str(tmp_path)):
      sweep.check_problem_counts(p.cfg, sweep.budget(arg, name), module.REPORT.length_axis)
      assert p.cfg.checkpoint.best_metric.startswith("val/") and p.cfg.eval.val_n_per_cell >= 1


def test_problem_count_check_names_the_short_cells_and_lengths():
  cfg = config.default_config()
  cfg.eval.lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.eval.n_per_cell = 20
  with pytest.raises(ValueError, match=r"full budget: 9 eval cells have fewer than 100.*eval.n_per_cell"):
    sweep.check_problem_counts(cfg, "full")
  with pytest.raises(ValueError, match=r"small budget: lengths \[1, 2\] pool fewer than 100"):
    sweep.check_problem_counts(cfg, "small")  # length 3 pools 5 cells x 20
  cfg.eval.min_per_length = 100
  sweep.check_problem_counts(cfg, "small")
  sweep.check_problem_counts(cfg, "micro")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_unknown_argument_is_refused_by_name(name):
  module, _ = sweep.load_experiment(str(REPO / "experiments" / name))
  with pytest.raises(ValueError, match=f"{name}.*'tiny'.*small, micro"):
    module.get_config("tiny")
  with pytest.raises(ValueError, match="'tiny'"):
    module.get_sweep("tiny")
