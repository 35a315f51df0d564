"""The training run, top to bottom: validate, build, resume, train, evaluate, checkpoint.

Every process runs this same function. Each builds only its rows of the global batch from
the stateless sampler (`data_gen.pipeline.sample_batch`: the batch of step s depends only on
the seed, s and the process's slice), so a run resumed from a checkpoint at step k sees
exactly the batches an uninterrupted run sees from k on, and the checkpoint carries the
metrics of the steps since the last metrics row, so metrics.jsonl matches too. Process 0 writes
the run record (see `arithlab.train.rundir`):

  workdir/lock.json, config.json, env.json, run.json, metrics.jsonl, checkpoints/<step>/,
  eval/grid_<step>.{npz,json,png},
  train_set/ (the fixed training set as TFDS, when data.train_set.size is set),
  tensorboard/, wandb/ (when cfg.logging asks for them: arithlab.train.writers),
  best.json (the final evaluation and the one the validation set chose as best: both test-grid scores)

Everything is checked before the first write: the config, the data, the model against the
eval grid, the directory (a new run, or the same run: `rundir.check_resume`) and the lock; the
checkpoint is restored (falling back past corrupt ones) before the record is updated.

Each evaluation scores the test grid (eval/... keys) and, with eval.val_n_per_cell, a validation
set of other problems (val/... keys); checkpoint.keep_best keeps the checkpoint with the highest
checkpoint.best_metric, a validation key, so the test grid never chooses what is reported on it.

`evaluate_checkpoint` scores a finished (or interrupted) run's checkpoint again, e.g. with an
evaluation-time RoPE scaling, into workdir/eval/<label>/ without touching what training wrote.
"""

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterator, Mapping

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from arithlab import config as config_lib
from arithlab import models
from arithlab.train import checkpoint as checkpoint_lib
from arithlab.train import decode as decode_lib
from arithlab.train import evaluate as evaluate_lib
from arithlab.train import mesh as mesh_lib
from arithlab.train import metrics as metrics_lib
from arithlab.train import optim
from arithlab.train import rundir
from arithlab.train import step as step_lib
from arithlab.train import writers
from data_gen import grid as grid_lib
from data_gen import pipeline, tfds_eval, tfds_train

Grid = dict[tuple[int, ...], dict[str, np.ndarray]]


def eval_grid(cfg: ml_collections.ConfigDict) -> Grid:
  """The evaluation cells: the frozen TFDS set at eval.tfds_dir (written for a data config that
  matches cfg.data, else ValueError), or sampled from eval.lengths."""
  if cfg.eval.tfds_dir:
    return tfds_eval.read_eval_set(cfg.eval.tfds_dir, cfg.data)
  counts = config_lib.cell_counts(cfg)
  return pipeline.eval_grid(cfg.data, list(counts), counts, seed=cfg.eval.seed)


def validation_grid(cfg: ml_collections.ConfigDict) -> Grid:
  """eval.val_n_per_cell validation problems per cell of the test grid (none when 0), never one of
  the test grid's problems (`pipeline.validation_grid`; a frozen test set is drawn again from the
  cells, counts and seed stored with it).

  Raises:
    ValueError: checkpoint.keep_best and the region of checkpoint.best_metric has no validation cell.
  """
  if not cfg.eval.val_n_per_cell:
    return {}
  if cfg.eval.tfds_dir:
    stored = tfds_eval.read_eval_config(cfg.eval.tfds_dir)
    cells, test_n, test_seed = [tuple(c) for c in stored.cells], stored.n_per_cell, stored.seed
  else:
    test_n, test_seed = config_lib.cell_counts(cfg), cfg.eval.seed
    cells = list(test_n)
  val = pipeline.validation_grid(cfg.data, cells, cfg.eval.val_n_per_cell, seed=cfg.eval.seed, test_n=test_n,
                                 test_seed=test_seed)
  ranges = pipeline.build(cfg.data).sources[0].ranges
  region = cfg.checkpoint.best_metric.rsplit("_", 1)[-1]
  inside = {"id": True, "ood": False}.get(region)
  if cfg.checkpoint.keep_best and not any(inside in (None, grid_lib.in_box(c, ranges)) for c in val):
    raise ValueError(f"checkpoint.best_metric={cfg.checkpoint.best_metric!r}: no validation cell in that region "
                     "(every problem of its cells is in the test grid); choose another best_metric, widen the "
                     "lengths or set checkpoint.keep_best=False")
  return val


def check_lengths(model: nnx.Module, train_batch: Mapping[str, np.ndarray] | None, grid: Grid) -> None:
  """Raises the model's ValueError (naming the encoding and its limit) when the training batch
  (None: not checked) or the longest eval cell (prompt + answer) has position IDs or a length
  the encoding cannot hold."""
  if train_batch is not None:
    model.check_length(int(np.max(train_batch["positions"])), train_batch["tokens"].shape[1])
  for batch in grid.values():
    positions = max(int(np.max(batch["prompt_positions"])), int(np.max(batch["answer_positions"])))
    model.check_length(positions, batch["prompt"].shape[1] + batch["answer"].shape[1])


def _pad_time_globally(local: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Right-pads this process's rows to the longest T of all processes (PAD, position 0, no loss),
  which changes no loss: every process then contributes the same [B_local, T] shape."""
  if jax.process_count() == 1:
    return local
  t = int(np.max(multihost_utils.process_allgather(np.int32(local["tokens"].shape[1]))))
  return {k: np.pad(v, [(0, 0), (0, t - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for k, v in local.items()}


def _mean_metrics(history: list[dict[str, Any]], timed: int) -> tuple[dict[str, float], float]:
  """The means over the logged interval (lr: its last value; float32 values, as the step returns
  them), and the tokens of its last `timed` steps (those this process ran since its clock started)."""
  values = jax.device_get(history)
  out = {k: float(np.mean([h[k] for h in values])) for k in values[0] if k != "tokens"}
  out["lr"] = float(values[-1]["lr"])
  return out, float(np.sum([h["tokens"] for h in values[-timed:]]))


@contextlib.contextmanager
def _claimed(workdir: str, cfg: ml_collections.ConfigDict) -> Iterator[tuple[bool, dict[str, list[Any]]]]:
  """Holds the run directory for the run of `cfg`: process 0 checks it (`rundir.saved_config`,
  `rundir.check_resume`) and locks it; yields (resuming, the RESUMABLE fields changed). Every
  process raises when process 0 refused, before anything is written."""
  lock, saved, changes, error = None, None, {}, None
  if metrics_lib.is_writer():
    try:
      rundir.saved_config(workdir)  # refuses a foreign directory before the lock file is written
      lock = rundir.Lock(workdir).acquire()
      saved = rundir.saved_config(workdir)  # again, under the lock
      changes = rundir.check_resume(workdir, saved, cfg) if saved is not None else {}
    except ValueError as e:
      error = e
      if lock is not None:
        lock.release()
  if jax.process_count() > 1 and multihost_utils.broadcast_one_to_all(np.int32(error is not None)):
    error = error or ValueError(f"process 0 refused the run directory {workdir} (its log says why)")
  if error is not None:
    raise error
  try:
    yield saved is not None, changes
  finally:
    if lock is not None:
      lock.release()


def _restore_latest(checkpointer: checkpoint_lib.Checkpointer, state: dict) -> tuple[int, dict, list, list]:
  """(step, state, the per-step metrics saved with it, [(step, error)] of the newer checkpoints
  that failed to restore) of the latest checkpoint that restores; (0, state, [], []) without one.

  Raises:
    ValueError: when there are checkpoints and none restores (every error listed; nothing deleted).
  """
  failed = []
  for step in sorted(checkpointer.all_steps(), reverse=True):
    try:
      restored, meta = checkpointer.restore_with_meta(step, state)
    except ValueError as e:
      logging.warning("checkpoint %d cannot be restored, falling back to the previous one: %s", step, e)
      failed.append((step, str(e)))
      continue
    return step, restored, meta.get("pending_metrics", []), failed
  if failed:
    raise ValueError(f"no checkpoint in {checkpointer.directory} restores: " + " | ".join(e for _, e in failed))
  return 0, state, [], failed


def _write_record(workdir: str, cfg: ml_collections.ConfigDict, resuming: bool, start: int,
                  changes: Mapping[str, list[Any]], corrupt: list[dict[str, Any]]) -> None:
  """After every check: config.json (new, or rewritten with the RESUMABLE changes), env.json (a
  new run), the fixed training set (data.train_set.size set), the attempt in run.json, and
  metrics.jsonl trimmed to the resumed step."""
  metrics_lib.write_config(workdir, cfg)
  env = metrics_lib.environment()
  if not resuming or not os.path.exists(os.path.join(workdir, rundir.ENV)):
    metrics_lib.write_json(os.path.join(workdir, rundir.ENV), env)
  rundir.trim_metrics(workdir, start)
  if cfg.data.train_set.size:  # a resume finds the same set there and keeps it
    tfds_train.write_train_set(cfg.data, os.path.join(workdir, rundir.TRAIN_SET))
  rundir.record_attempt(workdir, {
      "start": rundir.now(), "host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(sys.argv),
      "git_commit": env["git_commit"], "device_count": env["device_count"], "resume_from": start,
      "changed": dict(changes), "corrupt_checkpoints": corrupt})


def eval_model_def(cfg: ml_collections.ConfigDict, mesh, model_def: step_lib.ModelDef) -> step_lib.ModelDef:
  """The model that decodes at evaluation: the trained one, or (eval.rope_scaling set) the same
  parameters under that RoPE scaling."""
  if not cfg.eval.rope_scaling:
    return model_def
  return step_lib.model_def_of(models.with_rope_scaling(cfg.model, cfg.eval.rope_scaling), cfg.seed, mesh)


def make_run_eval(cfg: ml_collections.ConfigDict, mesh, model_def: step_lib.ModelDef, grid: Grid,
                  eval_dir: str) -> Callable[..., evaluate_lib.GridResult]:
  """`run_eval(state, step, on=None)`: decodes the grid with the state's parameters and (process 0)
  saves the result under eval_dir, recording eval.rope_scaling when it is set; `on`: other cells
  to score instead (the validation set), nothing saved."""
  rules = cfg.model.logical_rules
  data = pipeline.build(cfg.data)
  decode = decode_lib.make_decode(eval_model_def(cfg, mesh, model_def), mesh, rules, cached=cfg.eval.cached)
  dp = mesh_lib.data_parallel_size(dict(mesh.shape), rules)
  record = {"rope_scaling": cfg.eval.rope_scaling} if cfg.eval.rope_scaling else {}
  title = f"{cfg.name} (rope_scaling {cfg.eval.rope_scaling})" if record else cfg.name

  def run_eval(state: dict, step: int, on: Grid | None = None) -> evaluate_lib.GridResult:
    result = evaluate_lib.evaluate(
        lambda part: decode(state["params"], state["rng_counts"], mesh_lib.replicated_batch(part, mesh, rules)),
        grid if on is None else on, chunk=cfg.eval.batch_size, axes=data.sources[0].task.length_axes,
        train_ranges=data.sources[0].ranges, step=step, row_multiple=dp)
    if on is None and metrics_lib.is_writer():
      evaluate_lib.save(result, eval_dir, title, record)
    return result

  return run_eval


def train(cfg: ml_collections.ConfigDict, workdir: str, *, stop_at: int | None = None) -> dict[str, Any]:
  """Trains (or resumes) the run of `cfg` in `workdir` to cfg.train.steps.

  stop_at: stop after this step as a preemption would, with a checkpoint written (to split
  a run into job-length pieces; tests use it to check exact resume).
  Returns the last logged train metrics, the last eval summary and "step".

  Raises:
    ValueError: before anything is written, for a bad config, data or eval set, a model that
      cannot hold the data, a directory that is not this run's (another run, or not a run), a
      directory another process holds, or checkpoints of which none restores.
  """
  config_lib.validate(cfg, device_count=jax.device_count(), process_count=jax.process_count())
  writer = metrics_lib.is_writer()
  mesh = mesh_lib.make_mesh(cfg.mesh)
  rules = cfg.model.logical_rules

  data = pipeline.build(cfg.data)
  rows = mesh_lib.process_rows(mesh, rules, cfg.train.batch_size)
  per_process = cfg.train.batch_size // jax.process_count()
  if rows != (jax.process_index() * per_process, (jax.process_index() + 1) * per_process):
    raise ValueError(f"process {jax.process_index()} holds rows {rows} of the global batch, not its sampler "
                     f"slice; order the mesh devices by process (jax.devices() order does)")

  def batch_at(step: int) -> dict[str, np.ndarray]:
    local = pipeline.sample_built(data, seed=cfg.seed, step=step, process_index=jax.process_index(),
                                  process_count=jax.process_count(), batch_size=cfg.train.batch_size)
    return _pad_time_globally(local)

  grid, val_grid = eval_grid(cfg), validation_grid(cfg)
  tx = optim.make_optimizer(cfg.train)
  model_def, state, shardings = step_lib.init(cfg, mesh, tx)
  check_lengths(model_def.merge(state["params"], state["rng_counts"]), batch_at(0), grid)

  with _claimed(workdir, cfg) as (resuming, changes):
    def open_checkpoints() -> checkpoint_lib.Checkpointer:
      return checkpoint_lib.Checkpointer(os.path.join(workdir, rundir.CHECKPOINTS), cfg.checkpoint,
                                         cfg.checkpoint.best_metric)

    checkpointer = open_checkpoints()
    start, state, pending, failed = _restore_latest(checkpointer, state)
    corrupt = []
    if failed:  # moved out of orbax's sight, so that saving those steps again works
      checkpointer.close()
      if writer:
        corrupt = [{"step": s, "error": e, "moved_to": rundir.move_aside(workdir, s)} for s, e in failed]
        for c in corrupt:
          print(f"checkpoint {c['step']} is corrupt, resuming from step {start}; moved it to {c['moved_to']}: "
                f"{c['error']}", flush=True)
      if jax.process_count() > 1:
        multihost_utils.sync_global_devices("arithlab: corrupt checkpoints moved")
      checkpointer = open_checkpoints()
    if writer:
      _write_record(workdir, cfg, resuming, start, changes, corrupt)
    try:
      return _train_from(cfg, workdir, stop_at, state, start, pending, checkpointer, mesh, model_def, grid,
                         val_grid, tx, shardings, batch_at)
    finally:
      checkpointer.close()


def _train_from(cfg: ml_collections.ConfigDict, workdir: str, stop_at: int | None, state: dict, start: int,
                pending: list[dict[str, float]], checkpointer: checkpoint_lib.Checkpointer, mesh,
                model_def: step_lib.ModelDef, grid: Grid, val_grid: Grid, tx, shardings: dict,
                batch_at: Callable[[int], dict[str, np.ndarray]]) -> dict[str, Any]:
  """The training steps from `start` (the body of `train`, once the run directory is claimed).

  grid, val_grid: the test cells and the validation cells (empty: none) scored at each evaluation.
  pending: the per-step metrics since the last metrics row, saved with the checkpoint at start.
  Rows are written every train.log_every steps and at train.steps (not at a stop_at step: its
  partial interval is saved with the checkpoint instead, so a resumed run logs the same rows).
  """
  writer = metrics_lib.is_writer()
  rules = cfg.model.logical_rules
  first = batch_at(start)
  batch_shardings = {k: mesh_lib.batch_sharding(mesh, rules, v.ndim) for k, v in first.items()}
  train_step = step_lib.make_train_step(model_def, cfg.train, tx, shardings, batch_shardings, mesh)
  eval_dir = os.path.join(workdir, "eval")
  evaluate = make_run_eval(cfg, mesh, model_def, grid, eval_dir)
  metrics_writer = metrics_lib.MetricsWriter(workdir, writers.make_sinks(cfg, workdir, start)) if writer else None
  progress = metrics_lib.Progress(cfg.train.steps, start) if writer else None

  def run_eval(step: int) -> dict[str, float]:
    result = evaluate(state, step)
    summary = result.summary()
    if val_grid:
      summary.update(evaluate(state, step, on=val_grid).summary("val"))
    if writer:
      metrics_writer.write(step, summary)
      metrics_writer.write_image(step, "eval/heatmap", evaluate_lib.grid_prefix(eval_dir, step) + ".png")
      progress.message(evaluate_lib.format_grid(result))
    return summary

  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  history: list[dict[str, Any]] = [{k: np.float32(v) for k, v in row.items()} for row in pending]
  timed = 0  # steps run since the clock started
  tick, end = time.perf_counter(), cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
  for step in range(start, end):
    batch = first if step == start else batch_at(step)
    state, metrics = train_step(state, mesh_lib.global_batch(batch, mesh, rules, cfg.train.batch_size))
    history.append(metrics)
    timed += 1
    done = step + 1
    if done % cfg.train.log_every == 0 or done == cfg.train.steps:
      last_train, tokens = _mean_metrics(history, timed)
      elapsed, tick = time.perf_counter() - tick, time.perf_counter()
      last_train.update(step_time=elapsed / timed, tokens_per_s=tokens / elapsed)
      history, timed = [], 0
      if writer:
        metrics_writer.write(done, last_train)
        progress.update(done, last_train)
    evaluated = done == cfg.train.steps or (cfg.eval.every and done % cfg.eval.every == 0)
    if evaluated:
      last_eval = run_eval(done)
      tick, timed = time.perf_counter(), 0
    if done % cfg.checkpoint.every == 0 or done == end or evaluated:
      kept = [{k: float(v) for k, v in row.items()} for row in jax.device_get(history)]
      checkpointer.save(done, state, metrics=last_eval if evaluated else None, extra={"pending_metrics": kept})
  checkpointer.wait()
  if writer:
    progress.close()
    metrics_lib.write_json(os.path.join(workdir, rundir.BEST), evaluate_lib.final_and_best(
        metrics_lib.read_metrics(workdir), cfg.checkpoint.best_metric))
    metrics_writer.close()
  return {"step": end, **last_train, **last_eval}


def rescore_label(cfg: ml_collections.ConfigDict) -> str:
  """The folder under workdir/eval/ that `evaluate_checkpoint` writes: named by the RoPE
  override and a hash of the whole eval section, so rescoring with other settings never
  overwrites an earlier rescoring ("rope_scaling_yarn_3_35-1a2b3c", "rescored-4d5e6f")."""
  digest = hashlib.sha256(json.dumps(cfg.eval.to_dict(), sort_keys=True).encode()).hexdigest()[:6]
  name = "rope_scaling_" + cfg.eval.rope_scaling.replace(":", "_") if cfg.eval.rope_scaling else "rescored"
  return f"{name}-{digest}"


def evaluate_checkpoint(cfg: ml_collections.ConfigDict, workdir: str, step: int | None = None, *,
                        record_dir: str | None = None, eval_dir: str | None = None) -> dict[str, float]:
  """Scores checkpoint `step` (None: the latest) of the run in `workdir` on cfg's eval grid
  (with eval.rope_scaling when set): the grid files go to `eval_dir`, the config and env
  used to `record_dir` (both default to workdir/eval/<rescore_label>/). Training's own files
  are left as they are. Returns the eval summary and "step".

  Raises:
    ValueError: when workdir has no checkpoint (or not `step`), or the checkpoint does not fit
      cfg's model.
  """
  config_lib.validate(cfg, device_count=jax.device_count(), process_count=jax.process_count())
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise ValueError(f"no checkpoint at all in {os.path.join(workdir, 'checkpoints')} (no such directory); "
                     "train the run first or check --workdir")
  mesh = mesh_lib.make_mesh(cfg.mesh)
  model_def, state, _ = step_lib.init(cfg, mesh, optim.make_optimizer(cfg.train))
  checkpointer = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint,
                                             cfg.checkpoint.best_metric)
  steps = checkpointer.all_steps()
  step = max(steps, default=None) if step is None else step
  if step not in steps:
    checkpointer.close()
    raise ValueError(f"no checkpoint {'at all' if step is None else f'at step {step}'} in "
                     f"{os.path.join(workdir, 'checkpoints')} (it holds steps {steps}); train the run first "
                     "or choose one of those steps")
  state = checkpointer.restore(step, state)
  checkpointer.close()
  grid = eval_grid(cfg)
  check_lengths(model_def.merge(state["params"], state["rng_counts"]), None, grid)
  record_dir = record_dir or os.path.join(workdir, "eval", rescore_label(cfg))
  eval_dir = eval_dir or record_dir
  if metrics_lib.is_writer():
    os.makedirs(record_dir, exist_ok=True)
    metrics_lib.write_config(record_dir, cfg)
    metrics_lib.write_env(record_dir)
  return {"step": step, **make_run_eval(cfg, mesh, model_def, grid, eval_dir)(state, step).summary()}
