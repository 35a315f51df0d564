"""The train step: sharded over a 2x2x2 mesh it matches one device; gradient accumulation
matches the full batch; the metrics count what they say."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from arithlab import config
from arithlab.train import mesh, optim, step

# Runs in a subprocess: the fake device count must be set before jax is imported.
SHARDED_SCRIPT = """
import json
import jax
import numpy as np
from arithlab import config
from arithlab.train import mesh, optim, step

def losses(sizes, devices, accum):
  cfg = config.default_config()
  cfg.model.update(layers=2, d_model=32, heads=4, d_ff=64, vocab_size=16, max_len=32, dropout=0.1)
  cfg.train.update(steps=10, warmup_steps=2, lr=1e-2, grad_accum=accum)
  cfg.mesh.update(dict(zip(mesh.AXES, sizes)))
  device_mesh = mesh.make_mesh(cfg.mesh, devices)
  rules = cfg.model.logical_rules
  tx = optim.make_optimizer(cfg.train)
  model_def, state, shardings = step.init(cfg, device_mesh, tx)
  batch_shardings = {k: mesh.batch_sharding(device_mesh, rules, 2) for k in ("tokens", "positions", "loss_mask")}
  train_step = step.make_train_step(model_def, cfg.train, tx, shardings, batch_shardings, device_mesh)
  out = []
  for s in range(4):
    rng = np.random.default_rng(s)
    batch = {"tokens": rng.integers(1, 16, (16, 12)).astype(np.int32),
             "positions": np.tile(np.arange(12, dtype=np.int32), (16, 1)),
             "loss_mask": np.tile((np.arange(12) >= 6).astype(np.float32), (16, 1))}
    state, metrics = train_step(state, mesh.global_batch(batch, device_mesh, rules, 16))
    out.append(float(metrics["loss"]))
  spec = state["params"]["blocks"][0]["mlp"]["up"]["kernel"].sharding.spec
  return out, str(spec)

print(json.dumps({"one": losses((1, 1, 1), jax.devices()[:1], 1),
                  "mesh": losses((2, 2, 2), jax.devices(), 1)}))
"""


def test_2x2x2_mesh_matches_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  (one, _), (sharded, spec) = out["one"], out["mesh"]
  assert spec == "P('fsdp', 'tensor')"  # parameters really are split
  np.testing.assert_allclose(sharded, one, rtol=2e-6, atol=2e-6)
  assert one[-1] < one[0]  # it trains


def tiny(accum: int = 1, dropout: float = 0.0, dtype: str = "float32"):
  cfg = config.default_config()
  cfg.model.update(layers=1, d_model=16, heads=2, d_ff=32, vocab_size=16, max_len=32, dropout=dropout, dtype=dtype)
  cfg.train.update(steps=10, warmup_steps=0, lr=1e-2, grad_accum=accum)
  device_mesh = mesh.make_mesh(cfg.mesh)
  tx = optim.make_optimizer(cfg.train)
  model_def, state, shardings = step.init(cfg, device_mesh, tx)
  batch_shardings = {k: mesh.batch_sharding(device_mesh, cfg.model.logical_rules, 2)
                     for k in ("tokens", "positions", "loss_mask")}
  return state, step.make_train_step(model_def, cfg.train, tx, shardings, batch_shardings, device_mesh)


def batch(rows: int = 8, length: int = 10) -> dict[str, jax.Array]:
  rng = np.random.default_rng(0)
  mask = np.zeros((rows, length), np.float32)
  mask[:, 5:] = 1.0
  mask[0, 5:] = 0.0  # a row without targets counts in neither exact match nor loss
  return {"tokens": jax.numpy.asarray(rng.integers(1, 16, (rows, length)), jax.numpy.int32),
          "positions": jax.numpy.tile(jax.numpy.arange(length, dtype=jax.numpy.int32), (rows, 1)),
          "loss_mask": jax.numpy.asarray(mask)}


def test_grad_accumulation_matches_the_full_batch():
  (full_state, full_step), (acc_state, acc_step) = tiny(accum=1), tiny(accum=4)
  full_state, full_metrics = full_step(full_state, batch())
  acc_state, acc_metrics = acc_step(acc_state, batch())
  for key in ("loss", "token_accuracy", "exact_match", "grad_norm", "tokens"):
    np.testing.assert_allclose(acc_metrics[key], full_metrics[key], rtol=1e-5, err_msg=key)
  for a, b in zip(jax.tree.leaves(acc_state["params"]), jax.tree.leaves(full_state["params"])):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_metrics_counters_and_bf16_compute_with_fp32_master_weights():
  state, train_step = tiny(dropout=0.1, dtype="bfloat16")
  before = jax.tree.map(np.asarray, state["params"])
  state, metrics = train_step(state, batch())
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(state["params"]))
  assert all(m.dtype == np.float32 for m in jax.tree.leaves(state["opt_state"]) if m.ndim)
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state["params"])))
  assert int(state["step"]) == 1
  np.testing.assert_allclose(metrics["lr"], 1e-2)  # no warmup: the peak at step 0
  assert float(metrics["tokens"]) == 8 * 9  # non-PAD inputs tokens[:, :-1]
  assert 0.0 <= float(metrics["token_accuracy"]) <= 1.0 and float(metrics["loss"]) > 0
  assert all(int(c) > 0 for c in jax.tree.leaves(state["rng_counts"]))  # dropout drew keys
