"""Whole runs: exact resume, the run record of `arithlab.main`, and two processes joined by
jax.distributed agreeing with one."""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from arithlab.train import checkpoint, loop, mesh, metrics, optim, step
from data_gen import tfds_eval

REPO = pathlib.Path(__file__).resolve().parents[2]


def smoke_config():
  spec = importlib.util.spec_from_file_location("quickstart", REPO / "experiments" / "quickstart.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("smoke")


def final_state(cfg, workdir: str):
  """The train state of the run's last checkpoint."""
  _, template, _ = step.init(cfg, mesh.make_mesh(cfg.mesh), optim.make_optimizer(cfg.train))
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint, cfg.checkpoint.best_metric)
  return ckpt.restore(ckpt.latest_step(), template)


def train_metrics(workdir: str) -> list[dict]:
  return [{k: v for k, v in row.items() if k not in ("step_time", "tokens_per_s")}
          for row in metrics.read_metrics(workdir) if "loss" in row]


def test_killed_and_resumed_run_is_bitwise_identical(tmp_path):
  cfg = smoke_config()
  cfg.model.dropout = 0.1  # the RNG counters must resume too
  cfg.checkpoint.every = 2
  cfg.train.log_every = 4  # divides no checkpoint step but 4: the row at 6 averages steps 5 and 6
  whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")
  loop.train(cfg, whole)
  loop.train(cfg, pieces, stop_at=5)  # "killed" after step 5 (checkpoints 4 and 5 on disk)
  os.makedirs(os.path.join(pieces, "checkpoints", "6.orbax-checkpoint-tmp"))  # a save cut short by the kill
  resumed = loop.train(cfg, pieces)
  assert resumed["step"] == cfg.train.steps
  a, b = final_state(cfg, whole), final_state(cfg, pieces)
  assert int(a["step"]) == int(b["step"]) == cfg.train.steps
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert [r["step"] for r in train_metrics(whole)] == [4, 6]
  assert train_metrics(pieces) == train_metrics(whole)
  assert [r for r in metrics.read_metrics(pieces) if "loss" not in r] == \
      [r for r in metrics.read_metrics(whole) if "loss" not in r]


def test_main_writes_the_run_record(tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "arithlab.main", "--config=experiments/quickstart.py:smoke", f"--workdir={workdir}",
       "--config.train.steps=4"], cwd=REPO, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "exact match (%) at step 4" in result.stdout and "step 4/4" in result.stdout
  with open(workdir / "config.json") as f:
    assert json.load(f)["train"]["steps"] == 4
  with open(workdir / "env.json") as f:
    env = json.load(f)
  assert env["versions"]["jax"] == jax.__version__ and env["process_count"] == 1 and env["git_commit"]
  rows = metrics.read_metrics(str(workdir))
  assert {"loss", "token_accuracy", "exact_match", "grad_norm", "lr", "tokens_per_s", "step_time"} <= set(rows[0])
  assert any("eval/exact_id" in row for row in rows)
  assert (workdir / "checkpoints" / "4").is_dir()
  for suffix in ("npz", "json", "png"):
    assert (workdir / "eval" / f"grid_0000004.{suffix}").is_file()
  rescored = subprocess.run(
      [sys.executable, "-m", "arithlab.main", "--mode=evaluate", "--config=experiments/quickstart.py:smoke",
       f"--workdir={workdir}", "--config.train.steps=4", "--config.eval.rope_scaling=yarn:3:35", "--step=4"],
      cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert rescored.returncode == 0, rescored.stderr[-3000:]
  assert "step=4 eval/exact_all=" in rescored.stdout
  [rescored_dir] = (workdir / "eval").glob("rope_scaling_yarn_3_35-*")
  with open(rescored_dir / "grid_0000004.json") as f:
    assert json.load(f)["rope_scaling"] == "yarn:3:35"


def test_evaluate_checkpoint_rescores_without_touching_the_run(tmp_path):
  cfg = smoke_config()
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match=r"no checkpoint at all in .*checkpoints.*train the run first"):
    loop.evaluate_checkpoint(cfg, workdir)
  assert not os.path.exists(workdir)
  trained = loop.train(cfg, workdir)
  written = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
  same = loop.evaluate_checkpoint(cfg, workdir)  # no override: the training's final scores
  assert same["step"] == cfg.train.steps
  assert {k: v for k, v in same.items() if k.startswith("eval/")} == \
      {k: v for k, v in trained.items() if k.startswith("eval/")}
  cfg.eval.rope_scaling = "none"  # the trained model's scaling, named: the same scores again
  assert loop.evaluate_checkpoint(cfg, workdir) == same
  rescored_dir = os.path.join(workdir, "eval", loop.rescore_label(cfg))
  assert os.path.basename(rescored_dir).startswith("rope_scaling_none-")
  with open(os.path.join(rescored_dir, f"grid_{cfg.train.steps:07d}.json")) as f:
    assert json.load(f)["rope_scaling"] == "none"
  with open(os.path.join(rescored_dir, "config.json")) as f:
    assert json.load(f)["eval"]["rope_scaling"] == "none"
  cfg.eval.n_per_cell += 1  # other settings: another folder, the first one kept
  assert loop.rescore_label(cfg) != os.path.basename(rescored_dir)
  assert all(p.read_bytes() == data for p, data in written.items())
  with pytest.raises(ValueError, match=r"no checkpoint at step 1 in .*holds steps \[.*6\]"):
    loop.evaluate_checkpoint(cfg, workdir, step=1)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path):
  # No shared compilation cache (conftest.py) here: the two ranks would load each other's executables.
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  cfg = smoke_config()
  cfg.data.num_shards = 2
  cfg.train.steps = 4
  single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
  port = free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "arithlab.main", "--config=experiments/quickstart.py:smoke", f"--workdir={multi}",
       "--config.data.num_shards=2", "--config.train.steps=4", f"--coordinator_address=localhost:{port}",
       "--num_processes=2", f"--process_id={i}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=dict(env, JAX_PLATFORMS="cpu")) for i in range(2)]
  loop.train(cfg, single)
  for proc in procs:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
  with open(os.path.join(multi, "env.json")) as f:
    assert json.load(f)["process_count"] == 2
  one, two = train_metrics(single), train_metrics(multi)
  assert [r["step"] for r in one] == [r["step"] for r in two]
  for a, b in zip(one, two):
    for key in ("loss", "token_accuracy", "grad_norm"):
      np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)
  for x, y in zip(jax.tree.leaves(final_state(cfg, single)), jax.tree.leaves(final_state(cfg, multi))):
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)


def test_frozen_tfds_eval_set_replaces_the_sampled_grid(tmp_path):
  cfg = smoke_config()
  sampled = loop.eval_grid(cfg)
  tfds_eval.write_eval_set(cfg.data, list(sampled), cfg.eval.n_per_cell, str(tmp_path), seed=cfg.eval.seed)
  cfg.eval.tfds_dir = str(tmp_path)
  frozen = loop.eval_grid(cfg)
  assert list(frozen) == list(sampled)
  for cell in sampled:
    for key, value in sampled[cell].items():
      np.testing.assert_array_equal(frozen[cell][key], value)


def test_best_checkpoint_is_chosen_on_the_validation_set(tmp_path):
  cfg = smoke_config()
  cfg.train.steps, cfg.eval.every, cfg.checkpoint.every = 6, 2, 2
  workdir = str(tmp_path / "run")
  loop.train(cfg, workdir)
  rows = [row for row in metrics.read_metrics(workdir) if "eval/exact_id" in row]
  assert [row["step"] for row in rows] == [2, 4, 6]
  assert all({"val/exact_id", "val/exact_ood", "eval/exact_target_id"} <= set(row) for row in rows)
  with open(os.path.join(workdir, "best.json")) as f:
    record = json.load(f)
  best = max(rows, key=lambda row: (row["val/exact_id"], -row["step"]))
  assert record["best_metric"] == "val/exact_id" and record["final"]["step"] == 6
  assert record["best"]["step"] == best["step"] and record["best"]["eval/exact_id"] == best["eval/exact_id"]
  test, val = loop.eval_grid(cfg), loop.validation_grid(cfg)
  assert set(val) <= set(test) and val
  for cell in val:
    assert not set(map(bytes, val[cell]["prompt"])) & set(map(bytes, test[cell]["prompt"]))
