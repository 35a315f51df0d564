"""Logical axis names -> mesh axes, by one rules table (MaxText style, a few lines long).

Parameters carry `logical=("embed", "mlp")` metadata; activations are constrained with the
same names. A rule maps a logical name to a mesh axis, a tuple of mesh axes, or None
(replicated). A mesh axis is used at most once per array: a later dimension whose rule names
an axis an earlier dimension already took stays unsplit along it (e.g. with batch ->
("data", "fsdp") and embed -> "fsdp", an activation [batch, length, embed] splits only its
batch over fsdp, while a parameter [embed, mlp] splits embed over fsdp).
"""

from typing import Any, Sequence

import jax
from flax import nnx
from jax.sharding import PartitionSpec

Rules = Sequence[tuple[str, Any]]

DEFAULT_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("kv", None),
    ("length", None),
)


def freeze_rules(rules: Rules) -> tuple[tuple[str, Any], ...]:
  """The rules as nested tuples (hashable: modules keep them as static attributes), whatever
  sequences they came as (e.g. lists from a JSON config)."""
  return tuple((name, rule if rule is None or isinstance(rule, str) else tuple(rule))
               for name, rule in rules)


def _axes(rule: Any) -> tuple[str, ...]:
  if rule is None:
    return ()
  return (rule,) if isinstance(rule, str) else tuple(rule)


def logical_to_spec(names: Sequence[str | None], rules: Rules,
                    mesh_axes: Sequence[str] | None = None) -> PartitionSpec:
  """The PartitionSpec of an array whose dimensions have logical `names`.

  names: one logical name (or None) per dimension; a name without a rule is replicated.
  mesh_axes: if given, mesh axes outside it are dropped (a rule may name axes a smaller
  mesh lacks). Each mesh axis is used at most once (first dimension wins).
  """
  table = dict(rules)
  used: set[str] = set()
  spec = []
  for name in names:
    axes = [a for a in _axes(table.get(name)) if a not in used
            and (mesh_axes is None or a in mesh_axes)]
    used.update(axes)
    spec.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
  return PartitionSpec(*spec)


def constrain(x: jax.Array, names: Sequence[str | None], rules: Rules) -> jax.Array:
  """`with_sharding_constraint(x, spec)` under a mesh set by `jax.set_mesh`; else x itself."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  return jax.lax.with_sharding_constraint(x, logical_to_spec(names, rules, mesh.axis_names))


def partition_specs(tree: Any, rules: Rules, mesh_axes: Sequence[str] | None = None) -> Any:
  """The PartitionSpec pytree of a model's (or optimizer's) state.

  tree: an `nnx.State` (e.g. `nnx.state(model, nnx.Param)` or `nnx.state(optimizer)`)
  whose Variables carry `logical` metadata (optimizer state copies it from the params).
  Returns the same structure with each Variable's value replaced by its PartitionSpec;
  Variables without `logical` and plain arrays are replicated, PartitionSpec().
  """

  def spec(x):
    if isinstance(x, nnx.Variable):
      names = x.get_metadata().get("logical")
      return x.replace(PartitionSpec() if names is None
                       else logical_to_spec(names, rules, mesh_axes))
    return PartitionSpec() if hasattr(x, "shape") else None

  return jax.tree.map(spec, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))
