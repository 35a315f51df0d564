"""FIRE, T5 bias, RoPE++ and TAPE: their formulas at known inputs, translation invariance,
RoPE++'s complex scores and head layouts, TAPE's equivariance and that its position features
reach the logits. (Shapes, causality and cached == uncached decoding of every registered
encoding, these four and their randomized variants included, are in test_encodings_basic.py
and test_kv_cache.py.)"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from arithlab.models.attention import Keys, allowed_keys
from arithlab.models.encodings.fire import fire_inputs
from arithlab.models.encodings.rope import apply_rotary, make_rotation, rope_angles
from arithlab.models.encodings.rope_pp import RopePPLayer
from arithlab.models.encodings.t5 import relative_position_bucket

B, T = 2, 8


def first_layer(model):
  """The LayerEncoding of the first block."""
  return model.blocks[0].attn.encoding


def shifted_logits(model, tokens, positions, shift):
  return model(tokens, positions), model(tokens, positions + shift)


# ---------------------------------------------------------------- FIRE


def test_fire_inputs_at_known_values():
  c, threshold = jnp.float32(0.1), jnp.float32(512.0)
  i = jnp.array([[10, 1000, 600, 4]])
  j = jnp.array([[4, 0, 300, 10]])
  u = fire_inputs(i, j, c, threshold, signed=False)
  psi_L = math.log(51.2 + 1)
  np.testing.assert_allclose(np.diag(u[0]), [math.log(1.6) / psi_L,  # i < L: psi(L) normalizes
                                             1.0,  # j = 0, i >= L: interpolated to 1
                                             math.log(31) / math.log(61),
                                             math.log(1.6) / psi_L],  # |i - j| when i < j
                             rtol=1e-5)
  signed = fire_inputs(i, j, c, threshold, signed=True)
  np.testing.assert_allclose(np.diag(signed[0]), np.diag(u[0]) * [1, 1, 1, -1], rtol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_fire_bias_equals_its_formula_by_hand(causal, make_model):
  model = make_model("fire", causal=causal)
  layer = first_layer(model)
  layer.c[...] = jnp.float32(-0.3)  # psi reads |c x|
  layer.threshold_multiplier[...] = jnp.float32(-0.02)  # L = |-0.02 * 512| = 10.24
  q_ids, k_ids = np.array([[3, 9, 40]]), np.array([[0, 5, 9, 60]])
  bias = np.asarray(layer.bias(jnp.asarray(q_ids), jnp.asarray(k_ids), None))

  w1, b1 = np.asarray(layer.hidden_kernel[...])[0], np.asarray(layer.hidden_bias[...])
  w2, b2 = np.asarray(layer.out_kernel[...]), np.asarray(layer.out_bias[...])
  for t, i in enumerate(q_ids[0]):
    for s, j in enumerate(k_ids[0]):
      u = math.log(abs(0.3 * (i - j)) + 1) / (math.log(0.3 * max(10.24, i) + 1) + 1e-6)
      if not causal and i < j:
        u = -u
      expected = np.maximum(u * w1 + b1, 0) @ w2 + b2
      np.testing.assert_allclose(bias[0, :, t, s], expected, rtol=1e-5, atol=1e-6)


def test_fire_is_translation_invariant_only_below_its_threshold(make_model, make_positions,
                                                                make_tokens):
  tokens = make_tokens(3, B, T)
  model = make_model("fire")  # L = 512: IDs 1..45 stay below it
  positions = make_positions(model, np.zeros(B, int), T)
  np.testing.assert_allclose(*shifted_logits(model, tokens, positions, 37), atol=1e-5)
  model = make_model("fire", encoding_options=dict(init_threshold=4.0))
  assert not np.allclose(*shifted_logits(model, tokens, positions, 37), atol=1e-5)


# ---------------------------------------------------------------- T5


def test_t5_buckets_at_known_values():
  # Decoder: n = i - j; 16 exact buckets, then 16 log-spaced up to 128, capped at 31.
  n = jnp.array([0, 1, 15, 16, 20, 127, 128, 1000])
  np.testing.assert_array_equal(relative_position_bucket(-n, False, 32, 128),
                                [0, 1, 15, 16, 17, 31, 31, 31])
  np.testing.assert_array_equal(relative_position_bucket(n, False, 32, 128),
                                [0, 0, 0, 0, 0, 0, 0, 0])  # keys after the query: bucket 0
  # Encoder: r = j - i; r <= 0 in buckets 0..15 (8 exact), r > 0 in 16..31.
  r = jnp.array([-3, 3, -8, -20, 20, -200, 200])
  np.testing.assert_array_equal(relative_position_bucket(r, True, 32, 128),
                                [3, 19, 8, 10, 26, 15, 31])


@pytest.mark.parametrize("causal", [True, False])
def test_t5_bias_is_the_table_at_the_bucket_of_j_minus_i(causal, make_model):
  model = make_model("t5", causal=causal)
  layer = first_layer(model)
  q_ids, k_ids = jnp.array([[0, 7, 300]]), jnp.array([[0, 5, 9, 250]])
  bias = layer.bias(q_ids, k_ids, None)
  buckets = relative_position_bucket(k_ids[:, None, :] - q_ids[:, :, None], not causal, 32, 128)
  np.testing.assert_array_equal(bias, layer.table[...][buckets].transpose(0, 3, 1, 2))


def test_t5_table_is_shared_by_all_layers(make_model):
  model = make_model("t5")
  assert model.blocks[0].attn.encoding.table is model.blocks[1].attn.encoding.table
  assert model.encoding.table[...].shape == (32, 4)


# ---------------------------------------------------------------- translation invariance


@pytest.mark.parametrize("name,overrides", [
    ("t5", {}), ("t5", dict(causal=False)),
    ("rope_pp", {}), ("rope_pp", dict(encoding_options=dict(mode="eh"))),
], ids=["t5", "t5_encoder", "rope_pp_ec", "rope_pp_eh"])
def test_translation_invariance(name, overrides, make_model, make_positions, make_tokens):
  model = make_model(name, **overrides)
  positions = make_positions(model, np.zeros(B, int), T)
  np.testing.assert_allclose(*shifted_logits(model, make_tokens(3, B, T), positions, 37),
                             atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- RoPE++


@settings(max_examples=20, deadline=None)
@given(t=st.integers(0, 3000), s=st.integers(0, 3000))
def test_rope_pp_scores_are_re_and_minus_im_of_the_complex_product(t, s):
  """With q~_n = q_2n - i q_2n+1 (the pairing under which the paper's real score is
  (R_t q).(R_s k) for rope.py's counterclockwise rotations), the paper's
  sum_n q~_t,n conj(k~_s,n) e^{i theta_n (s - t)} has real part = the real head's score and
  minus its imaginary part = the imaginary head's score (dot products, before 1/sqrt(K))."""
  rng = np.random.default_rng(t * 3001 + s)
  heads, head_dim = 2, 8
  q = rng.normal(size=(1, 1, heads, head_dim)).astype(np.float32)
  k = rng.normal(size=(1, 1, heads, head_dim)).astype(np.float32)
  layer = RopePPLayer("rope_pp", make_rotation(head_dim, 100.0, "none"))
  q_rot, _ = layer.queries_keys(jnp.asarray(q), jnp.asarray(k), jnp.array([[t]]), None)
  _, k_rot = layer.queries_keys(jnp.asarray(q), jnp.asarray(k), jnp.array([[s]]), None)
  assert q_rot.shape == (1, 1, 2 * heads, head_dim)
  theta = 100.0 ** (-np.arange(0, head_dim, 2) / head_dim)
  for h in range(heads):
    q_c = q[0, 0, h, 0::2].astype(np.float64) - 1j * q[0, 0, h, 1::2]
    k_c = k[0, 0, h, 0::2].astype(np.float64) - 1j * k[0, 0, h, 1::2]
    product = np.sum(q_c * np.conj(k_c) * np.exp(1j * theta * (s - t)))
    real = float(q_rot[0, 0, 2 * h] @ k_rot[0, 0, h])
    imag = float(q_rot[0, 0, 2 * h + 1] @ k_rot[0, 0, h])
    np.testing.assert_allclose([real, imag], [product.real, -product.imag], atol=2e-3)


@pytest.mark.parametrize("mode,query,kv,out", [("ec", 4, 4, 8), ("eh", 2, 2, 4)])
def test_rope_pp_head_layout_and_projection_shapes(mode, query, kv, out, make_model):
  model = make_model("rope_pp", encoding_options=dict(mode=mode))
  attn = model.blocks[0].attn
  d_model, head_dim = 32, 8
  assert attn.query.kernel[...].shape == (d_model, query, head_dim)
  assert attn.key.kernel[...].shape == attn.value.kernel[...].shape == (d_model, kv, head_dim)
  assert attn.out.kernel[...].shape == (out, head_dim, d_model)
  assert model.init_cache(1, 5)["layers"][0]["k"].shape == (1, 5, kv, head_dim)


def test_rope_pp_eh_is_causal_and_decodes_like_the_forward_pass(make_model, make_positions,
                                                                 make_tokens):
  model = make_model("rope_pp", encoding_options=dict(mode="eh"))
  tokens = make_tokens(0, B, T)
  positions = make_positions(model, np.zeros(B, int), T)
  logits = model(tokens, positions)
  changed = model(tokens.at[:, 5:].set(tokens[:, 5:] % 15 + 1), positions)
  np.testing.assert_allclose(logits[:, :5], changed[:, :5], atol=1e-6)
  outs, cache = [], model.init_cache(B, T)
  for start, stop in [(0, 5)] + [(t, t + 1) for t in range(5, T)]:
    out, cache = model.decode(tokens[:, start:stop], positions[:, start:stop], cache)
    outs.append(out)
  cached = jnp.concatenate(outs, axis=1)
  np.testing.assert_allclose(cached, logits, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("name,options,match", [
    ("rope_pp", dict(mode="xx"), "ec, eh"),
    ("rope_pp", dict(mode="eh"), "even"),
    ("t5", dict(num_buckets=3), "even"),
    ("t5", dict(max_distance=16), "exceed"),
    ("fire", dict(init_threshold=0.0), "> 0"),
    ("tape", dict(position_ratio=0), ">= 1"),
])
def test_bad_options(name, options, match, make_model):
  with pytest.raises(ValueError, match=match):
    make_model(name, heads=1 if options.get("mode") == "eh" else 4, encoding_options=options)


# ---------------------------------------------------------------- TAPE


def random_features(seed, heads=4, features=4):
  """A TAPE state of non-unit random features [B, T, H, F]."""
  rng = np.random.default_rng(seed)
  return {name: jnp.asarray(rng.normal(size=(B, T, heads, features)), jnp.float32)
          for name in ("tape_cos", "tape_sin")}


def randomize_tape_params(layer, seed):
  """Non-zero W_E and W_up (they start at zero), so every path of the update is exercised."""
  rng = np.random.default_rng(seed)
  for param in (layer.mix, layer.x_proj, layer.up, layer.down):
    param[...] = jnp.asarray(rng.normal(size=param[...].shape) * 0.5, jnp.float32)


def test_tape_initial_features_rotate_like_rope(make_model, make_positions):
  model = make_model("tape")
  positions = make_positions(model, np.array([0, 2]), T, start=5)
  state = model.encoding.init_state(positions)
  assert state["tape_cos"].shape == (B, T, 4, 4)
  q, k = (jnp.asarray(np.random.default_rng(i).normal(size=(B, T, 4, 8)), jnp.float32)
          for i in range(2))
  q_rot, k_rot = first_layer(model).queries_keys(q, k, positions, state)
  angles = rope_angles(positions, 8, 10000.0)
  np.testing.assert_allclose(q_rot, apply_rotary(q, angles), atol=1e-6)
  np.testing.assert_allclose(k_rot, apply_rotary(k, angles), atol=1e-6)


def test_tape_feature_update_equals_its_formula_by_hand(make_model):
  """C += W_E (sum_j A_ij C_j) mixes heads and averages over keys (not queries); then
  C += W_down[SiLU(W_x y) * (W_up C)] on the head axis; the same for S."""
  layer = first_layer(make_model("tape"))
  randomize_tape_params(layer, 9)
  rng = np.random.default_rng(10)
  probs = np.asarray(jax.nn.softmax(rng.normal(size=(B, 4, T, T)), axis=-1), np.float32)
  x = rng.normal(size=(B, T, 32)).astype(np.float32)
  state, keys = random_features(11), random_features(12)
  mix, x_proj, up, down = (np.asarray(p[...]) for p in (layer.mix, layer.x_proj, layer.up,
                                                        layer.down))
  gate = x @ x_proj
  gate = gate / (1 + np.exp(-gate))
  attended = layer.after_attention(state, jnp.asarray(probs), keys)
  updated = layer.after_mlp(attended, jnp.asarray(x))
  for name in state:
    c, c_keys = np.asarray(state[name]), np.asarray(keys[name])
    expected = c.copy()
    for b, t, h in np.ndindex(B, T, 4):
      expected[b, t, h] += sum(mix[h, g] * probs[b, g, t] @ c_keys[b, :, g] for g in range(4))
    np.testing.assert_allclose(attended[name], expected, atol=1e-5)
    up_e = np.einsum("bthf,hp->btpf", expected, up)
    expected = expected + np.einsum("btpf,ph->bthf", gate[..., None] * up_e, down)
    np.testing.assert_allclose(updated[name], expected, atol=1e-4, rtol=1e-5)


def test_tape_feature_update_commutes_with_orthogonal_maps(make_model):
  """Given the attention weights, after_attention + after_mlp commute with any orthogonal map
  Q of the 2F coordinates (C_1..C_F, S_1..S_F) applied to every token's features."""
  layer = first_layer(make_model("tape"))
  randomize_tape_params(layer, 1)
  rng = np.random.default_rng(2)
  probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, 4, T, T)), jnp.float32), axis=-1)
  x = jnp.asarray(rng.normal(size=(B, T, 32)), jnp.float32)
  state, keys = random_features(3), random_features(4)
  orthogonal, _ = np.linalg.qr(rng.normal(size=(8, 8)))

  def transform(features):
    joint = jnp.concatenate([features["tape_cos"], features["tape_sin"]], axis=-1)
    cos, sin = jnp.split(joint @ jnp.asarray(orthogonal, jnp.float32), 2, axis=-1)
    return {"tape_cos": cos, "tape_sin": sin}

  def update(features, key_features):
    return layer.after_mlp(layer.after_attention(features, probs, key_features), x)

  expected, got = transform(update(state, keys)), update(transform(state), transform(keys))
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], atol=1e-4, rtol=1e-4)


def test_tape_layer_commutes_with_frequency_permutations_and_plane_rotations(make_model):
  """A whole block: permuting the F frequencies of (C, S) together with the matching query/key
  feature pairs, and rotating each (C_n, S_n) plane by a token-independent angle phi_n,
  leaves the hidden output unchanged and transforms the output features the same way."""
  model = make_model("tape")
  block = model.blocks[0]
  randomize_tape_params(block.attn.encoding, 5)
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.normal(size=(B, T, 32)), jnp.float32)
  positions = jnp.broadcast_to(jnp.arange(T), (B, T))
  keys = Keys(positions, allowed_keys(jnp.ones((B, T), bool), 0, T, True), None)
  state = random_features(7)
  perm = rng.permutation(4)
  phi = jnp.asarray(rng.uniform(0, 2 * np.pi, 4), jnp.float32)

  def transform(features):
    cos, sin = features["tape_cos"][..., perm], features["tape_sin"][..., perm]
    return {"tape_cos": cos * jnp.cos(phi) - sin * jnp.sin(phi),
            "tape_sin": cos * jnp.sin(phi) + sin * jnp.cos(phi)}

  y, out, _ = block(x, positions, state, keys, None, deterministic=True)
  pairs = np.stack([2 * perm, 2 * perm + 1], axis=-1).reshape(-1)
  for proj in (block.attn.query, block.attn.key):
    proj.kernel[...] = proj.kernel[...][..., pairs]
  y_t, out_t = block(x, positions, transform(state), keys, None, deterministic=True)[:2]
  np.testing.assert_allclose(y_t, y, atol=1e-5, rtol=1e-5)
  for name, expected in transform(out).items():
    np.testing.assert_allclose(out_t[name], expected, atol=1e-4, rtol=1e-4)


def test_tape_position_features_reach_the_logits(monkeypatch, make_model, make_positions,
                                                 make_tokens):
  """At initialisation (W_E = W_up = 0) the features act only through the rotation of q and k:
  the published code, which drops the rotated q and k, would give identical logits here."""
  model = make_model("tape")
  tokens = make_tokens(0, B, T)
  positions = make_positions(model, np.zeros(B, int), T)
  logits = model(tokens, positions)
  init_state = model.encoding.init_state
  noise = random_features(8)
  monkeypatch.setattr(model.encoding, "init_state", lambda p: {
      name: f + 0.5 * noise[name] for name, f in init_state(p).items()})
  assert not np.allclose(model(tokens, positions), logits, atol=1e-4)


def test_tape_caches_every_layers_features(make_model):
  cache = make_model("tape").init_cache(B, 5)
  for layer in cache["layers"]:
    assert layer["tape_cos"].shape == layer["tape_sin"].shape == (B, 5, 4, 4)
    assert layer["tape_cos"].dtype == jnp.float32


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("name,learned", [
    ("fire", ("c", "threshold_multiplier", "hidden_kernel", "out_bias")),
    ("t5", ("table",)),
    ("tape", ("mix", "up")),  # W_x, W_down get gradients once W_up leaves zero
])
def test_encoding_parameters_get_gradients_under_jit(name, learned, make_model, make_positions,
                                                     make_tokens):
  model = make_model(name)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  tokens = make_tokens(0, B, T)
  positions = make_positions(model, np.zeros(B, int), T)

  @jax.jit
  def grads(params):
    def loss(params):
      logits = nnx.merge(graphdef, params, rest)(tokens, positions)
      return -jnp.mean(jax.nn.log_softmax(logits)[..., 1])
    return jax.grad(loss)(params)

  flat = {"/".join(map(str, path)): var[...] for path, var in nnx.to_flat_state(grads(params))}
  for param in learned:
    [grad] = [g for path, g in flat.items() if path.endswith(f"blocks/0/attn/encoding/{param}")
              or path == f"encoding/{param}"]
    assert np.abs(np.asarray(grad)).max() > 0, param


# ---------------------------------------------------------------- encoder mode


@pytest.mark.parametrize("name", ["fire", "t5", "rope_pp", "tape"])
def test_encoder_mode_sees_later_tokens(name, make_model, make_positions, make_tokens):
  model = make_model(name, causal=False)
  tokens = make_tokens(0, B, T)
  positions = make_positions(model, np.zeros(B, int), T)
  logits = model(tokens, positions)
  assert logits.shape == (B, T, 16) and np.isfinite(np.asarray(logits)).all()
  changed = model(tokens.at[:, -1].set(tokens[:, -1] % 15 + 1), positions)
  assert not np.allclose(logits[:, 0], changed[:, 0])
