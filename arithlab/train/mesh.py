"""The device mesh (data, fsdp, tensor) and the NamedShardings of parameters, optimizer state and batches.

Parameters carry logical axis names (`nnx.Param(..., logical=("embed", "mlp"))`); the rules
table of the config (`cfg.model.logical_rules`) maps those names to mesh axes through
`arithlab.models.sharding.logical_to_spec`. Batches are split over whatever mesh axes the
logical name "batch" maps to (data and fsdp by default): the data-parallel axes.
"""

import math
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from arithlab.models.sharding import logical_to_spec, partition_specs

AXES = ("data", "fsdp", "tensor")


def mesh_shape(mesh_cfg: ml_collections.ConfigDict, device_count: int) -> tuple[int, ...]:
  """The size of each axis in AXES; one axis may be -1 and takes the devices left over.

  Raises:
    ValueError: naming the `mesh.*` fields when the sizes do not multiply to device_count.
  """
  sizes = [int(mesh_cfg[a]) for a in AXES]
  fields = ", ".join(f"mesh.{a}={s}" for a, s in zip(AXES, sizes))
  free = [i for i, s in enumerate(sizes) if s == -1]
  if len(free) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"{fields}: each axis must be a positive size, and at most one may be -1 (the rest)")
  fixed = math.prod(s for s in sizes if s != -1)
  if free:
    if device_count % fixed:
      raise ValueError(f"{fields}: the fixed axes ({fixed} devices) do not divide the {device_count} devices; "
                       f"choose sizes whose product divides {device_count}")
    sizes[free[0]] = device_count // fixed
  if math.prod(sizes) != device_count:
    raise ValueError(f"{fields}: the mesh needs {math.prod(sizes)} devices but there are {device_count}; "
                     "set one axis to -1 or make the product equal the device count")
  return tuple(sizes)


def make_mesh(mesh_cfg: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh over `devices` (default: all devices of all processes) with Auto axis types."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(mesh_cfg, len(devices))
  return jax.make_mesh(shape, AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(AXES), devices=devices)


def data_parallel_size(sizes: Mapping[str, int], rules: Any) -> int:
  """How many ways the batch dimension is split: the product of the sizes of the mesh axes
  that the logical name "batch" maps to. sizes: axis name -> size (e.g. `mesh.shape`)."""
  spec = logical_to_spec(("batch",), rules, tuple(sizes))
  axes = spec[0] if isinstance(spec[0], tuple) else () if spec[0] is None else (spec[0],)
  return math.prod(sizes[a] for a in axes)


def variable_shardings(state: nnx.State, mesh: Mesh, rules: Any) -> dict:
  """NamedShardings for an `nnx.State`, as a pure dict (the keys of `nnx.to_pure_dict(state)`).

  Each Variable's `logical` metadata goes through the rules table; Variables without it
  (RNG counters, scalars) are replicated.
  """
  specs = nnx.to_pure_dict(partition_specs(state, rules, mesh.axis_names))
  return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                      is_leaf=lambda x: isinstance(x, PartitionSpec))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same full copy on every device (scalars, RNG counters, metrics)."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, rules: Any, ndim: int) -> NamedSharding:
  """Sharding of a [B, ...] batch array with `ndim` dims: B over the data-parallel axes, the rest replicated."""
  batch_spec = logical_to_spec(("batch",), rules, mesh.axis_names)
  return NamedSharding(mesh, PartitionSpec(*batch_spec, *([None] * (ndim - 1))))


def process_rows(mesh: Mesh, rules: Any, global_batch: int) -> tuple[int, int]:
  """The rows [start, stop) of a global batch that this process's devices hold.

  Raises:
    ValueError: if they are not one contiguous block (a mesh whose batch axes interleave
      processes), which a stateless per-process sampler cannot produce.
  """
  sharding = batch_sharding(mesh, rules, 1)
  slices = sharding.addressable_devices_indices_map((global_batch,)).values()
  rows = sorted({(s[0].start or 0, global_batch if s[0].stop is None else s[0].stop) for s in slices})
  if any(stop != next_start for (_, stop), (next_start, _) in zip(rows, rows[1:])):
    raise ValueError(f"this process holds the batch rows {rows}, not one contiguous block; "
                     "order the mesh so that each process's devices are adjacent along the batch axes")
  return rows[0][0], rows[-1][1]


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh, rules: Any, global_size: int) -> dict[str, jax.Array]:
  """One global jax.Array per field from this process's rows (`process_rows`) of the batch.

  local: NumPy arrays [B_local, ...]; returns arrays [global_size, ...] sharded by `batch_sharding`.
  """
  return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, rules, v.ndim), v,
                                                    (global_size,) + v.shape[1:])
          for k, v in local.items()}


def replicated_batch(batch: Mapping[str, np.ndarray], mesh: Mesh, rules: Any) -> dict[str, jax.Array]:
  """One global jax.Array per field from a batch every process holds in full (eval batches)."""
  def put(v: np.ndarray) -> jax.Array:
    return jax.make_array_from_callback(v.shape, batch_sharding(mesh, rules, v.ndim), lambda idx: v[idx])

  return {k: put(np.asarray(v)) for k, v in batch.items()}
