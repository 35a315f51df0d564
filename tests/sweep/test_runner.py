"""The sweep runner: expansion and overrides, resuming a killed sweep without redoing finished
points, --parallel subprocesses, and the SLURM job array whose command runs a point."""

import json
import os
import pathlib
import subprocess
import sys
import types

import pytest

from arithlab import sweep
from arithlab.train import loop
from arithlab.train import metrics as metrics_lib

REPO = pathlib.Path(__file__).resolve().parents[2]

# A two-point experiment at the micro budget: reversed vs plain answers.
TOY = '''
from arithlab import config, report, sweep

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = (report.Reference({"format": "plain"}, 0.123, "Toy et al. 2099, Table 9", "toy setting"),)


def get_config(arg=None):
  sweep.budget(arg, "toy.py")
  cfg = config.default_config()
  cfg.data.train_lengths = {"len_0": (1, 2), "len_1": (1, 2)}
  sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  cfg.train.steps = 2  # so that a run can be killed half-way
  return cfg


def get_sweep(arg=None):
  return sweep.product(sweep.field_axis("format", "data.format", ["reverse_answer", "plain"]),
                       sweep.field_axis("seed", "seed", [0]))
'''


@pytest.fixture
def toy(tmp_path):
  path = tmp_path / "toy.py"
  path.write_text(TOY)
  return f"{path}:micro"


def planned(spec, workdir, overrides=None):
  module, arg = sweep.load_experiment(spec)
  return sweep.plan(module, arg, str(workdir), overrides)


def attempts(point):
  with open(os.path.join(point.workdir, sweep.ATTEMPTS)) as f:
    return [json.loads(line) for line in f]


def test_product_names_points_and_merges_fields():
  points = sweep.product(sweep.axis("format", {"plain": {"data.format": "plain"},
                                               "pad": {"data.format": "pad", "data.max_len": 64}}),
                         sweep.field_axis("seed", "seed", [0, 1]))
  assert [p.name for p in points] == ["format=plain,seed=0", "format=plain,seed=1", "format=pad,seed=0",
                                      "format=pad,seed=1"]
  assert points[3].overrides == {"data.format": "pad", "data.max_len": 64, "seed": 1}
  assert sweep.slug(sweep.Point({"encoding": "randomized:rope", "seed": 0}, {})) == "encoding-randomized-rope_seed-0"
  assert sweep.slug(points[0]) == "format-plain_seed-0"


def test_bad_axes_and_overrides_raise_naming_them():
  with pytest.raises(ValueError, match="repeat an axis name"):
    sweep.product(sweep.field_axis("seed", "seed", [0]), sweep.field_axis("seed", "train.lr", [1.0]))
  with pytest.raises(ValueError, match=r"\['seed'\]"):
    sweep.product(sweep.field_axis("a", "seed", [0]), sweep.field_axis("b", "seed", [1]))
  with pytest.raises(ValueError, match="no values"):
    sweep.axis("format", {})
  with pytest.raises(ValueError, match="needs max_pos"):
    sweep.encoding_axis(["coupling"])
  module = types.SimpleNamespace(__name__="bad", get_config=lambda arg: sweep.micro(
      __import__("arithlab.config").config.default_config(), {"len_0": (1, 2), "len_1": (1, 2)}),
      get_sweep=lambda arg: sweep.field_axis("format", "data.formt", ["plain"]))
  with pytest.raises(ValueError, match=r"point 'format=plain'.*'data.formt' unknown.*format"):
    sweep.plan(module, None, "/nonexistent")
  module.get_sweep = lambda arg: sweep.field_axis("steps", "train.nosuch.steps", [1])
  with pytest.raises(ValueError, match="'train.nosuch' is not a config section"):
    sweep.plan(module, None, "/nonexistent")
  module.get_sweep = lambda arg: sweep.field_axis("steps", "train.steps", ["many"])
  with pytest.raises(ValueError, match="'train.steps' cannot take 'many'"):
    sweep.plan(module, None, "/nonexistent")
  module.get_sweep = lambda arg: sweep.field_axis("a", "seed", [0]) + sweep.field_axis("b", "seed", [0])
  with pytest.raises(ValueError, match="same config"):
    sweep.plan(module, None, "/nonexistent")
  with pytest.raises(ValueError, match="not found"):
    sweep.load_experiment("experiments/nosuch.py:small")


def test_a_changed_config_gets_its_own_directory(toy, tmp_path):
  base = planned(toy, tmp_path)
  changed = planned(toy, tmp_path, {"train.lr": 0.5})
  assert [os.path.basename(p.workdir).rsplit("-", 1)[0] for p in base] == ["format-reverse_answer_seed-0",
                                                                          "format-plain_seed-0"]
  assert {p.workdir for p in base}.isdisjoint(p.workdir for p in changed)
  assert all(p.cfg.train.lr == 0.5 for p in changed)


def test_a_new_field_with_a_default_keeps_every_point_directory(toy, tmp_path, monkeypatch):
  before = planned(toy, tmp_path)
  default_config = sweep.config.default_config

  def with_new_field():
    cfg = default_config()
    cfg.train.new_option = "off"
    return cfg

  monkeypatch.setattr(sweep.config, "default_config", with_new_field)
  after = planned(toy, tmp_path)
  assert [p.workdir for p in after] == [p.workdir for p in before]
  assert all(p.cfg.train.new_option == "off" for p in after)
  assert planned(toy, tmp_path, {"train.new_option": "on"})[0].workdir != before[0].workdir


def test_only_selects_points_by_label(toy, tmp_path):
  points = planned(toy, tmp_path)
  assert sweep.select(points, ["format=plain"]) == points[1:]
  assert sweep.select(points, ["format=plain,reverse_answer", "seed=0"]) == points
  with pytest.raises(ValueError, match="'formt=plain'.*axis of the sweep: format, seed"):
    sweep.select(points, ["formt=plain"])
  with pytest.raises(ValueError, match=r"axis 'format' has no label\(s\) \['nope'\]; its labels: plain, reverse_answer"):
    sweep.select(points, ["format=nope"])
  sweep.run(toy, str(tmp_path), slurm=True, only=["format=plain"])
  assert "#SBATCH --array=1\n" in (tmp_path / "sweep.sbatch").read_text()


def test_killed_sweep_resumes_without_redoing_finished_points(toy, tmp_path):
  first, second = planned(toy, tmp_path)
  loop.train(second.cfg, second.workdir, stop_at=1)  # killed after step 1 (checkpoint 1, no done marker)
  assert sweep.run(toy, str(tmp_path)) == []
  assert [a["resume_from"] for a in attempts(first)] == [0]
  assert [a["resume_from"] for a in attempts(second)] == [1]  # resumed from its checkpoint
  assert [r["step"] for r in metrics_lib.read_metrics(second.workdir) if "loss" in r] == [1, 2]
  done_mtime = os.path.getmtime(os.path.join(second.workdir, sweep.DONE))
  os.remove(os.path.join(first.workdir, sweep.DONE))  # as if killed after its last checkpoint
  assert sweep.run(toy, str(tmp_path)) == []
  assert [a["resume_from"] for a in attempts(first)] == [0, 2]
  assert len(attempts(second)) == 1 and os.path.getmtime(os.path.join(second.workdir, sweep.DONE)) == done_mtime
  assert [r["step"] for r in metrics_lib.read_metrics(first.workdir) if "loss" in r] == [1, 2]
  report = (tmp_path / "report.md").read_text()
  row = next(line for line in report.splitlines() if line.startswith("| plain |"))
  assert "12.3% (unverified) Toy et al. 2099, Table 9 [toy setting]" in row and "1/1" in row


def test_slurm_script_and_parallel_subprocesses_run_the_same_point_command(toy, tmp_path):
  args, overrides = ["--config.train.lr=0.01"], {"train.lr": 0.01}
  sweep.run(toy, str(tmp_path), slurm=True, sbatch=["--gres=gpu:1"], cli_args=args, cli_overrides=overrides)
  script = (tmp_path / "sweep.sbatch").read_text()
  assert "#SBATCH --array=0,1\n" in script and "#SBATCH --gres=gpu:1\n" in script
  assert not (tmp_path / "points").exists()  # nothing ran
  command = script.strip().splitlines()[-1]
  assert command.startswith("srun ${PYTHON:-python} -m arithlab.sweep ")
  assert command.endswith("--point=$SLURM_ARRAY_TASK_ID --config.train.lr=0.01")

  assert sweep.run(toy, str(tmp_path), parallel=2, cli_args=args, cli_overrides=overrides) == []
  points = planned(toy, tmp_path, overrides)
  for p in points:
    record = json.loads(open(os.path.join(p.workdir, sweep.POINT)).read())
    assert record["command"].endswith(f"--point={p.index} --config.train.lr=0.01")
    assert json.loads(open(os.path.join(p.workdir, "config.json")).read())["train"]["lr"] == 0.01
  task = subprocess.run(["bash", "-c", command.removeprefix("srun ")], cwd=REPO, capture_output=True, text=True,
                        env={**os.environ, "PYTHON": sys.executable, "SLURM_ARRAY_TASK_ID": "1"}, timeout=300)
  assert task.returncode == 0, task.stderr[-3000:]
  assert len(attempts(points[1])) == 1  # the array task found its point done


EVAL_ONLY = TOY.replace('''  return sweep.product(sweep.field_axis("format", "data.format", ["reverse_answer", "plain"]),
                       sweep.field_axis("seed", "seed", [0]))''', '''  return sweep.product(sweep.field_axis("scaling", "eval.rope_scaling", ["", "linear:2"]),
                       sweep.field_axis("seed", "seed", [0]))''')


def test_a_point_that_changes_only_evaluation_scores_the_trained_run(tmp_path):
  path = tmp_path / "eval_only.py"
  path.write_text(EVAL_ONLY)
  spec = f"{path}:micro"
  trained, rescored = planned(spec, tmp_path / "sweep")
  assert sweep.trained_twin(rescored, [trained, rescored]) == trained
  assert sweep.trained_twin(trained, [trained, rescored]) is None
  assert sweep.run(spec, str(tmp_path / "sweep")) == []
  assert not os.path.exists(os.path.join(rescored.workdir, "checkpoints"))  # nothing trained there
  with open(os.path.join(rescored.workdir, sweep.DONE)) as f:
    assert json.load(f)["scored_checkpoint_of"] == trained.workdir
  with open(os.path.join(rescored.workdir, "eval", "grid_0000002.json")) as f:
    assert json.load(f)["rope_scaling"] == "linear:2"
  with open(os.path.join(rescored.workdir, "config.json")) as f:
    assert json.load(f)["eval"]["rope_scaling"] == "linear:2"
  assert [set(r) >= {"eval/exact_all"} for r in metrics_lib.read_metrics(rescored.workdir)] == [True]
  row = next(line for line in (tmp_path / "sweep" / "report.md").read_text().splitlines() if "linear:2" in line)
  assert "1/1" in row
