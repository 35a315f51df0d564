"""The training run, top to bottom: validate, build, resume, train, evaluate, checkpoint.

Every process runs this same function. Each builds only its rows of the global batch from
the stateless sampler (`data_gen.pipeline.sample_batch`: the batch of step s depends only on
the seed, s and the process's slice), so a run resumed from a checkpoint at step k sees
exactly the batches an uninterrupted run sees from k on. Process 0 writes the run record:

  workdir/config.json, env.json, metrics.jsonl, checkpoints/<step>/, eval/grid_<step>.{npz,json,png},
  best.json (the final evaluation and the one the validation set chose as best: both test-grid scores)

Each evaluation scores the test grid (eval/... keys) and, with eval.val_n_per_cell, a validation
set of other problems (val/... keys); checkpoint.keep_best keeps the checkpoint with the highest
checkpoint.best_metric, a validation key, so the test grid never chooses what is reported on it.

`evaluate_checkpoint` scores a finished (or interrupted) run's checkpoint again, e.g. with an
evaluation-time RoPE scaling, into workdir/eval/<label>/ without touching what training wrote.
"""

import hashlib
import json
import os
import time
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np
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
from arithlab.train import step as step_lib
from data_gen import grid as grid_lib
from data_gen import pipeline, tfds_eval

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


def _trim_metrics(workdir: str, step: int) -> None:
  """Drops metrics.jsonl rows after `step` (written by a run that died after its last checkpoint)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    kept = [row for row in metrics_lib.read_metrics(workdir) if row["step"] <= step]
    os.remove(path)
    writer = metrics_lib.MetricsWriter(workdir)
    for row in kept:
      writer.write(row.pop("step"), row)


def _mean_metrics(history: list[dict[str, jax.Array]]) -> dict[str, float]:
  """Means over the logged interval (lr: the last value; tokens: the sum)."""
  values = jax.device_get(history)
  out = {k: float(np.mean([h[k] for h in values])) for k in values[0]}
  out["lr"] = float(values[-1]["lr"])
  out["tokens"] = float(np.sum([h["tokens"] for h in values]))
  return out


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
  """
  config_lib.validate(cfg, device_count=jax.device_count(), process_count=jax.process_count())
  writer = metrics_lib.is_writer()
  mesh = mesh_lib.make_mesh(cfg.mesh)
  rules = cfg.model.logical_rules
  if writer:
    os.makedirs(workdir, exist_ok=True)
    metrics_lib.write_config(workdir, cfg)
    metrics_lib.write_env(workdir)

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

  checkpointer = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint,
                                             cfg.checkpoint.best_metric)
  start = checkpointer.latest_step() or 0
  if start:
    state = checkpointer.restore(start, state)
    if writer:
      _trim_metrics(workdir, start)

  first = batch_at(start)
  batch_shardings = {k: mesh_lib.batch_sharding(mesh, rules, v.ndim) for k, v in first.items()}
  train_step = step_lib.make_train_step(model_def, cfg.train, tx, shardings, batch_shardings, mesh)
  evaluate = make_run_eval(cfg, mesh, model_def, grid, os.path.join(workdir, "eval"))
  metrics_writer = metrics_lib.MetricsWriter(workdir) if writer else None
  progress = metrics_lib.Progress(cfg.train.steps, start) if writer else None

  def run_eval(step: int) -> dict[str, float]:
    result = evaluate(state, step)
    summary = result.summary()
    if val_grid:
      summary.update(evaluate(state, step, on=val_grid).summary("val"))
    if writer:
      metrics_writer.write(step, summary)
      progress.message(evaluate_lib.format_grid(result))
    return summary

  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  history: list[dict[str, jax.Array]] = []
  tick, end = time.perf_counter(), cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
  for step in range(start, end):
    batch = first if step == start else batch_at(step)
    state, metrics = train_step(state, mesh_lib.global_batch(batch, mesh, rules, cfg.train.batch_size))
    history.append(metrics)
    done = step + 1
    if done % cfg.train.log_every == 0 or done == end:
      last_train = _mean_metrics(history)
      elapsed, tick = time.perf_counter() - tick, time.perf_counter()
      last_train.update(step_time=elapsed / len(history), tokens_per_s=last_train.pop("tokens") / elapsed)
      history = []
      if writer:
        metrics_writer.write(done, last_train)
        progress.update(done, last_train)
    evaluated = done == cfg.train.steps or (cfg.eval.every and done % cfg.eval.every == 0)
    if evaluated:
      last_eval = run_eval(done)
      tick = time.perf_counter()
    if done % cfg.checkpoint.every == 0 or done == end or evaluated:
      checkpointer.save(done, state, metrics=last_eval if evaluated else None)
  checkpointer.wait()
  checkpointer.close()
  if writer:
    progress.close()
    metrics_lib.write_json(os.path.join(workdir, "best.json"), evaluate_lib.final_and_best(
        metrics_lib.read_metrics(workdir), cfg.checkpoint.best_metric))
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
