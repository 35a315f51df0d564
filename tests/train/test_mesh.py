"""Mesh shapes from config, the data-parallel size and the batch rows of a process."""

import jax
import pytest

from arithlab.models.sharding import DEFAULT_RULES
from arithlab.train import mesh


@pytest.mark.parametrize("sizes, devices, expected", [
    ((-1, 1, 1), 8, (8, 1, 1)),
    ((2, 2, 2), 8, (2, 2, 2)),
    ((2, -1, 1), 8, (2, 4, 1)),
    ((1, 1, -1), 1, (1, 1, 1)),
])
def test_mesh_shape(sizes, devices, expected):
  assert mesh.mesh_shape(dict(zip(mesh.AXES, sizes)), devices) == expected


@pytest.mark.parametrize("sizes, devices, message", [
    ((3, 1, 1), 8, "mesh.data=3"),
    ((-1, -1, 1), 8, "at most one may be -1"),
    ((3, -1, 1), 8, "do not divide the 8 devices"),
    ((0, 1, 1), 1, "positive"),
])
def test_mesh_shape_errors_name_the_fields(sizes, devices, message):
  with pytest.raises(ValueError, match=message):
    mesh.mesh_shape(dict(zip(mesh.AXES, sizes)), devices)


def test_data_parallel_size_follows_the_batch_rule():
  sizes = {"data": 2, "fsdp": 3, "tensor": 5}
  assert mesh.data_parallel_size(sizes, DEFAULT_RULES) == 6
  assert mesh.data_parallel_size(sizes, (("batch", "data"),)) == 2
  assert mesh.data_parallel_size(sizes, (("batch", None),)) == 1


def test_single_process_holds_every_row():
  device_mesh = mesh.make_mesh(dict(data=-1, fsdp=1, tensor=1))
  assert device_mesh.shape == {"data": jax.device_count(), "fsdp": 1, "tensor": 1}
  assert mesh.process_rows(device_mesh, DEFAULT_RULES, 16) == (0, 16)
