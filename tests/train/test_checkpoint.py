"""Checkpoints restore bitwise; corrupt or incompatible ones raise a ValueError naming the path
and leave every file as it was; retention keeps the latest K plus the best."""

import hashlib
import os

import jax
import numpy as np
import optax
import pytest

from arithlab import config
from arithlab.train import checkpoint, mesh, optim, step


def tiny_state(seed: int = 0, d_model: int = 16):
  cfg = config.default_config()
  cfg.seed = seed
  cfg.model.update(layers=1, d_model=d_model, heads=2, d_ff=32, vocab_size=16, max_len=32, dropout=0.1)
  device_mesh = mesh.make_mesh(cfg.mesh)
  _, state, _ = step.init(cfg, device_mesh, optim.make_optimizer(cfg.train))
  return cfg, state


def files(directory: str) -> dict[str, str]:
  """relative path -> sha256 of every file under directory."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


def saved(tmp_path, state, step_number: int = 3):
  cfg = config.checkpoint_config()
  ckpt = checkpoint.Checkpointer(str(tmp_path / "checkpoints"), cfg, cfg.best_metric)
  ckpt.save(step_number, state)
  ckpt.wait()
  return ckpt


def test_restore_is_bitwise(tmp_path):
  _, state = tiny_state(seed=0)
  state["params"] = jax.tree.map(lambda x: x + 0.125, state["params"])
  ckpt = saved(tmp_path, state)
  _, other = tiny_state(seed=1)
  restored = ckpt.restore(ckpt.latest_step(), other)
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    assert a.dtype == b.dtype and a.sharding == b.sharding
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_corrupt_bytes_raise_and_delete_nothing(tmp_path):
  _, state = tiny_state()
  ckpt = saved(tmp_path, state)
  step_dir = tmp_path / "checkpoints" / "3"
  largest = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  data = bytearray(largest.read_bytes())
  data[len(data) // 2] ^= 0xFF
  largest.write_bytes(bytes(data))
  before = files(str(tmp_path))
  with pytest.raises(ValueError, match=f"checkpoint {step_dir}.*(corrupt|cannot be restored).*nothing was deleted"):
    ckpt.restore(3, state)
  assert files(str(tmp_path)) == before


def test_truncated_file_raises_and_deletes_nothing(tmp_path):
  _, state = tiny_state()
  ckpt = saved(tmp_path, state)
  step_dir = tmp_path / "checkpoints" / "3"
  largest = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  largest.write_bytes(largest.read_bytes()[:10])
  before = files(str(tmp_path))
  with pytest.raises(ValueError, match=f"checkpoint {step_dir}"):
    ckpt.restore(3, state)
  assert files(str(tmp_path)) == before


def test_incompatible_config_raises_and_deletes_nothing(tmp_path):
  _, state = tiny_state(d_model=16)
  ckpt = saved(tmp_path, state)
  _, wider = tiny_state(d_model=32)
  before = files(str(tmp_path))
  with pytest.raises(ValueError, match=f"checkpoint {tmp_path / 'checkpoints' / '3'} cannot be restored"):
    ckpt.restore(3, wider)
  assert files(str(tmp_path)) == before


def test_keeps_the_latest_and_the_best(tmp_path):
  cfg = config.checkpoint_config()
  cfg.update(keep=1, keep_best=True, async_save=False)
  ckpt = checkpoint.Checkpointer(str(tmp_path), cfg, "eval/exact_id")
  tree = {"w": jax.numpy.zeros(3)}
  for s, metrics in [(1, {"eval/exact_id": 0.9}), (2, {"eval/exact_id": 0.5}), (3, None), (4, None)]:
    ckpt.save(s, tree, metrics)
  ckpt.wait()
  assert ckpt.all_steps() == [1, 4]


def test_digest_sees_order_and_bits():
  a = {"w": jax.numpy.arange(6.0).reshape(2, 3)}
  assert checkpoint.digest(a) != checkpoint.digest({"w": a["w"][::-1]})
  assert checkpoint.digest(a) != checkpoint.digest({"w": a["w"] + np.float32(1e-7) * a["w"]})
  assert checkpoint.digest(a) == checkpoint.digest({"w": jax.numpy.array(np.arange(6.0).reshape(2, 3), np.float32)})
  assert set(checkpoint.digest({"x": optax.EmptyState(), "y": {"z": jax.numpy.ones(2, jax.numpy.bfloat16)}})) == {
      "['y']['z']"}
