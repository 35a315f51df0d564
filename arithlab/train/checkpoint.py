"""Orbax checkpoints of the train state: every N steps and at the end, keep K plus the best by eval.

A checkpoint holds two items: `state` (params, optimizer state and the model's RNG counters,
sharded arrays) and `meta` (JSON: the step and a digest of every array). Together with the
stateless data sampler (the batch of step s depends only on the seed and s) this makes a
resumed run bitwise identical to an uninterrupted one. The digest catches what orbax
itself would restore silently (flipped bytes in an array file). Any failure to restore
raises a ValueError naming the checkpoint's path; nothing on disk is ever deleted by a
failed restore.
"""

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

_MIX = 2654435761  # Knuth's multiplicative hash constant: makes the digest depend on element order


def _leaf_digest(x: jax.Array) -> jax.Array:
  """uint32 scalar: sum over elements of bits(x) * (MIX * flat_index + 1), wrapping mod 2**32.

  x: any array of 1-, 2- or 4-byte elements (bool, int8..int32, bfloat16, float32, uint32).
  """
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[x.dtype.itemsize]
  bits = jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32)
  index = jnp.arange(x.size, dtype=jnp.uint32).reshape(x.shape)
  return jnp.sum(bits * (index * jnp.uint32(_MIX) + jnp.uint32(1)), dtype=jnp.uint32)


@jax.jit
def _tree_digest(tree) -> list[jax.Array]:
  return [_leaf_digest(x) for x in jax.tree.leaves(tree)]


def digest(tree) -> dict[str, int]:
  """{leaf path: uint32 checksum} of a pytree of (possibly sharded, multi-host) arrays."""
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
  return {p: int(d) for p, d in zip(paths, _tree_digest(tree))}


def abstract(tree):
  """The ShapeDtypeStruct (with sharding) of every array: the restore target of `tree`."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class Checkpointer:
  """An orbax CheckpointManager over directory/<step>/{state,meta}.

  ckpt_cfg fields: every (save interval in steps), keep (latest checkpoints kept),
  keep_best (also keep the one with the highest `best_metric`), async_save.
  """

  def __init__(self, directory: str, ckpt_cfg: ml_collections.ConfigDict, best_metric: str):
    self.directory = os.path.abspath(directory)
    keep: list[policies.PreservationPolicy] = [policies.LatestN(n=ckpt_cfg.keep)]
    if ckpt_cfg.keep_best:
      keep.append(policies.BestN(get_metric_fn=lambda m: m[best_metric], n=1,
                                 keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy(keep),
        enable_async_checkpointing=ckpt_cfg.async_save,
        cleanup_tmp_directories=False,
    )
    try:
      self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))
    except Exception as e:  # orbax raises many types for unreadable directories
      raise ValueError(f"checkpoint directory {self.directory} cannot be opened ({type(e).__name__}: {e}); "
                       "nothing was deleted: move it away or choose another --workdir") from e

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state: Any, metrics: Mapping[str, float] | None = None,
           extra: Mapping[str, Any] | None = None) -> None:
    """Saves `state` (a pytree of jax arrays) as checkpoint `step`; `metrics` rank it for keep_best;
    `extra` (JSON-able) is stored beside it and returned by `restore_with_meta`."""
    meta = {**(extra or {}), "step": int(step), "digest": digest(state)}
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    meta=ocp.args.JsonSave(meta)),
                      metrics=dict(metrics) if metrics is not None else None, force=True)

  def restore(self, step: int, target: Any) -> Any:
    """Checkpoint `step` restored into the shapes, dtypes and shardings of `target` (arrays or
    abstract); raises as `restore_with_meta`."""
    return self.restore_with_meta(step, target)[0]

  def restore_with_meta(self, step: int, target: Any) -> tuple[Any, dict[str, Any]]:
    """(state, meta) of checkpoint `step`: the state restored into the shapes, dtypes and
    shardings of `target` (arrays or abstract), and the JSON saved with it (step, digest, extra).

    Raises:
      ValueError: naming the checkpoint's path when it is unreadable, does not match `target`
        (another model or optimizer config) or fails its digest (corrupted bytes).
    """
    path = os.path.join(self.directory, str(step))
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract(target)), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax/tensorstore raise many types; all mean "cannot use this checkpoint"
      raise ValueError(
          f"checkpoint {path} cannot be restored into this run's state ({type(e).__name__}: {e}). "
          "It is corrupt or was written by a different model/optimizer config; nothing was deleted: "
          "move it away or choose another --workdir") from e
    expected, found = restored["meta"]["digest"], digest(restored["state"])
    bad = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
    if bad:
      raise ValueError(f"checkpoint {path} is corrupt: the arrays {bad[:5]} do not match the digest saved "
                       "with them; nothing was deleted: move it away or choose another --workdir")
    return restored["state"], restored["meta"]

  def wait(self) -> None:
    """Blocks until asynchronous saves are on disk."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
