"""The run config: one ml_collections ConfigDict with sections model, data, train, eval, mesh,
checkpoint, logging (TensorBoard / W&B copies of the record), and its start-up validation.

Experiments (experiments/*.py) start from `default_config()` and change fields; `validate`
runs once before anything is built and raises a ValueError naming the field and what to
change. Checks that need the built model (eval lengths vs. the encoding's limits) run in
`arithlab.train.loop` right after the model is built, before the first step.
"""

import math
import sys
from typing import Any, Mapping

import jax
import ml_collections
from absl import flags
from flax import nnx

from arithlab import models
from arithlab.models.sharding import logical_to_spec
from arithlab.train import writers
from arithlab.train.evaluate import SUMMARY_KEYS, VAL_KEYS
from arithlab.train.mesh import AXES, data_parallel_size, mesh_shape
from data_gen import grid, pipeline


def train_config() -> ml_collections.ConfigDict:
  """Optimization and logging (Lee et al.'s AdamW recipe by default)."""
  return ml_collections.ConfigDict(dict(
      steps=5000,  # optimizer updates
      batch_size=256,  # global batch (all processes), divided into grad_accum micro-batches
      grad_accum=1,  # micro-batches per update (scanned inside the step)
      lr=1e-3,  # peak learning rate
      warmup_steps=100,  # linear warmup from 0
      end_lr_ratio=0.1,  # cosine decay to lr * end_lr_ratio at `steps` (Lee: lr / 10)
      b1=0.9,
      b2=0.99,
      weight_decay=0.1,  # on matrices only
      grad_clip=1.0,  # global-norm clipping; 0 disables it
      log_every=50,  # steps between metrics.jsonl rows and progress updates
  ))


def eval_config() -> ml_collections.ConfigDict:
  """The length grid (docs/evaluation.md#evaluation-protocol)."""
  return ml_collections.ConfigDict(dict(
      lengths=ml_collections.ConfigDict(),  # {axis: (min, max)} inclusive, the axes of data.train_lengths
      n_per_cell=100,  # exact-length problems per cell
      min_per_length=0,  # the cells of one length (their largest) pool at least this many problems: a cell
      #   gets max(n_per_cell, ceil(min_per_length / cells of its length)); see cell_counts
      val_n_per_cell=20,  # validation problems per cell (the best checkpoint is chosen on them): held out
      #   from training like the test cells, drawn apart from them and never one of theirs; 0: none
      seed=2024,  # evaluation problems (drawn apart from training data)
      every=1000,  # steps between evaluations (0: only at the end)
      batch_size=512,  # decoded rows per call; a multiple of the data-parallel size
      cached=True,  # KV-cache decoding (False: the uncached reference, slower)
      tfds_dir="",  # a frozen set written by data_gen.tfds_eval: evaluate on it instead
      rope_scaling="",  # decode with this RoPE scaling ("linear:4", "ntk:4", "yarn:4:64", "none"; see
      #   models.with_rope_scaling) instead of the trained model's; "": the trained model's
  ))


def mesh_config() -> ml_collections.ConfigDict:
  """Mesh axis sizes; one may be -1 (the devices left over)."""
  return ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))


def checkpoint_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      every=1000,  # steps between checkpoints (and one at the end)
      keep=2,  # latest checkpoints kept
      keep_best=True,  # also keep the best checkpoint by best_metric, on the validation set
      best_metric="val/exact_ood",  # one of arithlab.train.evaluate.VAL_KEYS (never a test-grid key)
      async_save=True,  # write in the background while training continues
  ))


def default_config() -> ml_collections.ConfigDict:
  """Every section with its defaults; experiments change what they need."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "run"  # shown in plots and logs
  cfg.seed = 0  # model initialization, dropout and training data
  cfg.model = models.default_model_config()
  cfg.data = pipeline.default_data_config()
  cfg.model.vocab_size = pipeline.build(cfg.data).tokenizer.vocab_size  # re-set it when changing the tokenizer
  cfg.train = train_config()
  cfg.eval = eval_config()
  cfg.eval.lengths = {axis: (1, hi + 4) for axis, (_, hi) in cfg.data.train_lengths.items()}
  cfg.mesh = mesh_config()
  cfg.checkpoint = checkpoint_config()
  cfg.logging = writers.default_config()
  return cfg


def leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{dotted field: value} of a nested dict's leaves (an empty dict is a leaf)."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, Mapping) and value:
      out.update(leaves(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def field_section(cfg: ml_collections.ConfigDict, field: str, where: str) -> tuple[ml_collections.ConfigDict, str]:
  """(the section holding dotted `field`, its last name).

  Raises:
    ValueError: naming `where` and the field when it does not exist, listing the fields of the
      section it names (or the part that is not a section).
  """
  *parents, leaf = field.split(".")
  node = cfg
  for depth, part in enumerate(parents):
    child = node.get(part)
    if not isinstance(child, ml_collections.ConfigDict):
      raise ValueError(f"{where}: field {field!r} unknown: {'.'.join(parents[:depth + 1])!r} is not a config "
                       f"section; the config has: {', '.join(sorted(node.keys()))}")
    node = child
  if leaf not in node:
    raise ValueError(f"{where}: field {field!r} unknown; its section has: {', '.join(sorted(node.keys()))}")
  return node, leaf


def parse_flags(argv: list[str]) -> list[str]:
  """The absl flags parser of entry points with a --config flag (`app.run(main, flags_parser=...)`):
  an override of a field that does not exist (--config.train.bogus=1) exits with the fields its
  section has instead of a traceback. Returns the arguments left after the flags."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError):
    for arg in argv[1:]:
      if arg.startswith("--config."):
        try:
          field_section(default_config(), arg.removeprefix("--config.").partition("=")[0], arg)
        except ValueError as e:
          sys.exit(f"FATAL Flags parsing error: {e}")
    raise


# The model field that sets a parameter dimension of each logical name (when they are equal).
FIELD_OF_LOGICAL = {"vocab": "vocab_size", "embed": "d_model", "mlp": "d_ff", "heads": "heads", "length": "max_len"}


def check_sharding(model_cfg: ml_collections.ConfigDict, sizes: Mapping[str, int]) -> None:
  """Raises ValueError when a parameter dimension does not divide by the mesh axes its logical
  name maps to (model.logical_rules), naming the model field and a value that divides.

  sizes: mesh axis name -> size. The model is traced abstractly (no arrays, no devices), and
  only when some parameter rule maps to an axis of size > 1.
  """
  rules = model_cfg.logical_rules
  if not any(name != "batch" and rule is not None and any(
      sizes.get(a, 1) > 1 for a in ((rule,) if isinstance(rule, str) else rule)) for name, rule in rules):
    return
  params = nnx.state(nnx.eval_shape(lambda: models.build(model_cfg, rngs=nnx.Rngs(0))), nnx.Param)
  for path, param in jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: isinstance(x, nnx.Variable))[0]:
    names = param.get_metadata().get("logical")
    if names is None:
      continue
    spec = logical_to_spec(names, rules, tuple(sizes))
    for dim, (n, axes) in enumerate(zip(param.shape, spec)):
      axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
      ways = math.prod(sizes[a] for a in axes)
      if n % ways == 0:
        continue
      mesh = " x ".join(f"mesh.{a}={sizes[a]}" for a in axes)
      where = jax.tree_util.keystr(path)
      field = FIELD_OF_LOGICAL.get(names[dim])
      named = field is not None and model_cfg[field] == n
      what = f"model.{field}={n}" if named else f"parameter {where}"
      fix = f"set model.{field}={-(-n // ways) * ways} (a multiple of {ways})" if named else \
          "change model.logical_rules"
      raise ValueError(f"{what} does not divide over the mesh: dimension {dim} ({names[dim]!r}) of parameter "
                       f"{where} {tuple(param.shape)} is split {ways} ways ({mesh}); {fix}, or change the mesh")


def _positive(cfg: ml_collections.ConfigDict, section: str, fields: tuple[str, ...], minimum: int = 1) -> None:
  for field in fields:
    if cfg[section][field] < minimum:
      raise ValueError(f"{section}.{field}={cfg[section][field]} must be >= {minimum}")


def eval_ranges(cfg: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """eval.lengths as inclusive (min, max) per length axis, in the task's axis order.

  Raises:
    ValueError: naming eval.lengths when its axes differ from the task's or a range is empty.
  """
  axes = pipeline.build(cfg.data).sources[0].task.length_axes
  lengths = dict(cfg.eval.lengths)
  if sorted(lengths) != sorted(axes) or any(not 1 <= lo <= hi <= pipeline.MAX_AXIS_LENGTH
                                            for lo, hi in lengths.values()):
    raise ValueError(f"eval.lengths={lengths} must map each length axis of task {cfg.data.task!r} "
                     f"{list(axes)} to an inclusive range (min, max) with 1 <= min <= max <= "
                     f"{pipeline.MAX_AXIS_LENGTH} (the supported maximum)")
  return [tuple(int(n) for n in lengths[axis]) for axis in axes]


def cell_counts(cfg: ml_collections.ConfigDict) -> dict[tuple[int, ...], int]:
  """Problems per cell of the sampled eval grid: eval.n_per_cell, raised so that the cells that
  share their largest length together hold at least eval.min_per_length (length 1 of a two-axis
  grid is one cell, length n is 2n - 1 cells: short lengths get more problems per cell)."""
  cells = grid.cells(eval_ranges(cfg))
  sharing: dict[int, int] = {}
  for cell in cells:
    sharing[max(cell)] = sharing.get(max(cell), 0) + 1
  return {cell: max(cfg.eval.n_per_cell, -(-cfg.eval.min_per_length // sharing[max(cell)])) for cell in cells}


def validate(cfg: ml_collections.ConfigDict, *, device_count: int, process_count: int = 1) -> None:
  """Raises ValueError naming the first inconsistent field and what to change.

  Checks the model and data sections (their own validators), the mesh against the device
  count, the batch sizes against the data-parallel size and grad_accum, the vocabulary
  against the tokenizer, the eval grid's axes against the task, and the schedule.
  """
  models.validate(cfg.model)
  writers.validate(cfg.logging)
  if cfg.eval.rope_scaling:
    try:
      models.with_rope_scaling(cfg.model, cfg.eval.rope_scaling)
    except ValueError as e:
      raise ValueError(f"eval.rope_scaling={cfg.eval.rope_scaling!r}: {e}") from e
  if not cfg.model.causal:
    raise ValueError("model.causal=False: the loop trains next-token decoders and evaluates them by greedy "
                     "decoding, which an encoder would solve by looking ahead; set model.causal=True")
  data = pipeline.build(cfg.data)
  _positive(cfg, "train", ("steps", "batch_size", "grad_accum", "log_every"))
  _positive(cfg, "train", ("warmup_steps",), minimum=0)
  _positive(cfg, "eval", ("n_per_cell", "batch_size"))
  _positive(cfg, "eval", ("every", "min_per_length", "val_n_per_cell"), minimum=0)
  _positive(cfg, "checkpoint", ("every", "keep"))
  if cfg.train.warmup_steps >= cfg.train.steps:
    raise ValueError(f"train.warmup_steps={cfg.train.warmup_steps} must be below train.steps={cfg.train.steps}")
  if cfg.train.lr <= 0:
    raise ValueError(f"train.lr={cfg.train.lr} must be > 0")
  dp = data_parallel_size(dict(zip(AXES, mesh_shape(cfg.mesh, device_count))), cfg.model.logical_rules)
  if cfg.train.batch_size % (dp * cfg.train.grad_accum):
    raise ValueError(f"train.batch_size={cfg.train.batch_size} must be a multiple of the data-parallel size "
                     f"({dp}) times train.grad_accum={cfg.train.grad_accum}: use a multiple of "
                     f"{dp * cfg.train.grad_accum}")
  check_sharding(cfg.model, dict(zip(AXES, mesh_shape(cfg.mesh, device_count))))
  if cfg.eval.batch_size % dp:
    raise ValueError(f"eval.batch_size={cfg.eval.batch_size} must be a multiple of the data-parallel size "
                     f"({dp}): use a multiple of {dp}")
  if cfg.data.num_shards % process_count:
    raise ValueError(f"data.num_shards={cfg.data.num_shards} must be a multiple of the process count "
                     f"({process_count}): set data.num_shards={process_count} (or a multiple)")
  vocab = data.tokenizer.vocab_size
  if cfg.model.vocab_size < vocab:
    raise ValueError(f"model.vocab_size={cfg.model.vocab_size} is smaller than the vocabulary of tokenizer "
                     f"{cfg.data.tokenizer!r} ({vocab} ids): set model.vocab_size={vocab}")
  if cfg.checkpoint.best_metric in SUMMARY_KEYS:
    raise ValueError(f"checkpoint.best_metric={cfg.checkpoint.best_metric!r} is a test-grid score; the best "
                     "checkpoint is chosen on the validation set: use "
                     f"{cfg.checkpoint.best_metric.replace('eval/', 'val/', 1)!r}")
  if cfg.checkpoint.best_metric not in VAL_KEYS:
    raise ValueError(f"checkpoint.best_metric={cfg.checkpoint.best_metric!r} unknown; choose one of: "
                     f"{', '.join(VAL_KEYS)}")
  if cfg.checkpoint.keep_best and not cfg.eval.val_n_per_cell:
    raise ValueError("checkpoint.keep_best needs a validation set to choose on: set eval.val_n_per_cell >= 1 "
                     "or checkpoint.keep_best=False")
  ranges = eval_ranges(cfg)
  if cfg.checkpoint.keep_best and not cfg.eval.tfds_dir:
    inside = [grid.in_box(cell, data.sources[0].ranges) for cell in grid.cells(ranges)]
    region = cfg.checkpoint.best_metric.rsplit("_", 1)[-1]
    if (region == "ood" and all(inside)) or (region == "id" and not any(inside)):
      raise ValueError(f"checkpoint.best_metric={cfg.checkpoint.best_metric!r} needs eval cells "
                       f"{'outside' if region == 'ood' else 'inside'} data.train_lengths, and eval.lengths="
                       f"{dict(cfg.eval.lengths)} has none: widen eval.lengths or choose another best_metric")
