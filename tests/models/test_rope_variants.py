"""RoPE's length-extrapolation variants (issue 9): scaling formulas at hand-computed values,
every variant at scale 1 equals plain RoPE exactly, position interpolation equals RoPE at
positions / s, partial rotation and p-RoPE leave the other features alone, translation
invariance, NoPE/RoPE layer patterns, and evaluating trained parameters with another scaling."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from arithlab import models
from arithlab.models.encodings.base import LayerEncoding
from arithlab.models.encodings.rope import RopeLayer, apply_rotary, rope_angles
from arithlab.models.encodings.rope_scaling import (RopeScaling, base_frequencies,
                                                    inverse_frequencies, ntk_base,
                                                    parse_scaling, qk_scale, yarn_ramp)

B, T = 2, 8


def first_layer(model):
  return model.blocks[0].attn.encoding


def logits_at(model, make_tokens, positions):
  return np.asarray(model(make_tokens(3, B, positions.shape[1]), positions))


# ---------------------------------------------------------------- the formulas


@pytest.mark.parametrize("spec,expected", [
    ("none", RopeScaling()),
    ("linear:4", RopeScaling("linear", 4.0)),
    ("ntk:2.5", RopeScaling("ntk", 2.5)),
    ("yarn:4:64", RopeScaling("yarn", 4.0, 64, 1.0, 32.0)),
    ("yarn:8:100:2:16", RopeScaling("yarn", 8.0, 100, 2.0, 16.0)),
])
def test_parse_scaling(spec, expected):
  assert parse_scaling(spec) == expected


@pytest.mark.parametrize("spec,message", [
    ("lin:4", "unknown"), ("linear", "unknown"), ("yarn:4", "unknown"), ("ntk:4:2", "unknown"),
    ("linear:x", "not a number"), ("linear:0.5", "must be >= 1"),
    ("yarn:4:6.5", "positive integer"), ("yarn:4:64:32:1", "alpha < beta"),
])
def test_parse_scaling_names_the_bad_spec(spec, message):
  with pytest.raises(ValueError, match=f"{spec}.*{message}"):
    parse_scaling(spec)


@pytest.mark.parametrize("spec", ["linear:1", "ntk:1", "yarn:1:16", "yarn:1:3:0.5:2"])
def test_every_scaling_at_factor_1_is_plain_rope_exactly(spec):
  scaling = parse_scaling(spec)
  np.testing.assert_array_equal(inverse_frequencies(8, 100.0, scaling),
                                base_frequencies(8, 100.0))
  assert qk_scale(scaling) == 1.0


def test_linear_interpolation_divides_positions_by_s():
  ids = jnp.array([[0, 3, 17, 250]])
  np.testing.assert_allclose(rope_angles(ids, 8, 10000.0, parse_scaling("linear:4")),
                             rope_angles(ids / 4, 8, 10000.0), rtol=1e-6)


def test_ntk_scales_the_base():
  d, base, s = 8, 10000.0, 4.0
  assert ntk_base(d, base, s) == pytest.approx(10000.0 * 4.0 ** (8 / 6))
  theta = inverse_frequencies(d, base, parse_scaling("ntk:4"))
  np.testing.assert_allclose(theta, base_frequencies(d, 10000.0 * 4.0 ** (8 / 6)), rtol=1e-12)
  plain = base_frequencies(d, base)
  assert theta[0] == plain[0] == 1.0  # the highest frequency is kept
  assert theta[-1] == pytest.approx(plain[-1] / s, rel=1e-12)  # the lowest is interpolated
  with pytest.raises(ValueError, match="ntk.*more than 2"):
    ntk_base(2, base, s)


def test_yarn_per_frequency_factors_by_hand():
  """d = 8, base 10000: theta = 1, 0.1, 0.01, 0.001; L = 1000 gives r = L theta / (2 pi) =
  159.2 (> beta: kept), 15.92 and 1.592 (on the ramp), 0.159 (< alpha: theta / s)."""
  s, L, alpha, beta = 4.0, 1000, 1.0, 32.0
  theta = np.array([1.0, 0.1, 0.01, 0.001])
  r = L * theta / (2 * math.pi)
  np.testing.assert_allclose(r, [159.1549, 15.91549, 1.591549, 0.1591549], rtol=1e-6)
  gamma = [1.0, (15.91549 - 1) / 31, (1.591549 - 1) / 31, 0.0]
  np.testing.assert_allclose(yarn_ramp(8, 10000.0, L, alpha, beta), gamma, rtol=1e-6)
  expected = [(1 - g) * t / s + g * t for g, t in zip(gamma, theta)]  # the paper's h(theta)
  np.testing.assert_allclose(inverse_frequencies(8, 10000.0, parse_scaling("yarn:4:1000")),
                             expected, rtol=1e-6)
  assert qk_scale(parse_scaling("yarn:4:1000")) == pytest.approx(0.1 * math.log(4) + 1)
  assert qk_scale(parse_scaling("yarn:4:1000")) == pytest.approx(1.1386294, rel=1e-7)


def test_yarn_temperature_scales_the_logits_by_1_over_t(make_model, make_positions):
  """q.k of the YaRN layer = (0.1 ln s + 1)^2 = 1/t times q.k rotated with YaRN's frequencies."""
  model = make_model("rope", encoding_options=dict(scaling="yarn:4:16"))
  positions = make_positions(model, np.zeros(1, int), T)
  q, k = (jnp.asarray(np.random.default_rng(i).normal(size=(1, T, 4, 8)), jnp.float32)
          for i in range(2))
  q_rot, k_rot = first_layer(model).queries_keys(q, k, positions, None)
  angles = rope_angles(positions, 8, 10000.0, parse_scaling("yarn:4:16"))
  inv_t = (0.1 * math.log(4) + 1) ** 2
  np.testing.assert_allclose(jnp.einsum("bthk,bshk->bhts", q_rot, k_rot),
                             inv_t * jnp.einsum("bthk,bshk->bhts", apply_rotary(q, angles),
                                                apply_rotary(k, angles)), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- partial rotation, p-RoPE


@pytest.mark.parametrize("partial,spectrum", [("neox", 4), ("p_rope", 8)])
def test_partial_rotation_leaves_the_other_features_untouched(partial, spectrum, make_model,
                                                              make_positions):
  """fraction 0.5 of head_dim 8 rotates 4 features: "neox" with a 4-feature spectrum, p-RoPE
  with the 2 highest frequencies of the 8-feature spectrum (the lowest ones dropped)."""
  model = make_model("rope", encoding_options=dict(fraction=0.5, partial=partial,
                                                   scaling="ntk:2"))
  positions = make_positions(model, np.array([0, 3]), T, start=40)
  q, k = (jnp.asarray(np.random.default_rng(i).normal(size=(B, T, 4, 8)), jnp.float32)
          for i in range(2))
  q_rot, k_rot = first_layer(model).queries_keys(q, k, positions, None)
  for x, x_rot in ((q, q_rot), (k, k_rot)):
    np.testing.assert_array_equal(x_rot[..., 4:], x[..., 4:])
    angles = rope_angles(positions, spectrum, 10000.0, parse_scaling("ntk:2"))[..., :2]
    np.testing.assert_allclose(x_rot[..., :4], apply_rotary(x[..., :4], angles), atol=1e-6)


def test_p_rope_keeps_the_highest_frequencies(make_model):
  rotation = make_model("rope", encoding_options=dict(fraction=0.5, partial="p_rope")
                        ).encoding.rotation
  np.testing.assert_allclose(rotation.angles(jnp.array([[1]]))[0, 0], [1.0, 0.1], rtol=1e-6)
  with pytest.raises(ValueError, match="partial 'top'.*neox, p_rope"):
    make_model("rope", encoding_options=dict(partial="top"))


# ---------------------------------------------------------------- whole models


SCALE_1 = [
    ("rope", dict(scaling="linear:1")),
    ("rope", dict(scaling="ntk:1")),
    ("rope", dict(scaling="yarn:1:16")),
    ("rope", dict(partial="p_rope")),
    ("rope", dict(layer_pattern="rope,rope")),
    ("randomized:rope", dict(scaling="yarn:1:16")),
    ("rope_pp", dict(scaling="yarn:1:16")),
    ("tape", dict(scaling="ntk:1")),
]


@pytest.mark.parametrize("name,options", SCALE_1, ids=[f"{n}-{o}" for n, o in SCALE_1])
def test_every_variant_at_scale_1_equals_plain_rope_exactly(name, options, make_model,
                                                            make_positions, make_tokens):
  plain, variant = make_model(name), make_model(name, encoding_options=options)
  positions = make_positions(plain, np.array([0, 2]), T, start=30)
  np.testing.assert_array_equal(logits_at(variant, make_tokens, positions),
                                logits_at(plain, make_tokens, positions))


def test_all_nope_pattern_is_the_none_encoding(make_model, make_positions, make_tokens):
  nope = make_model("rope", encoding_options=dict(layer_pattern="nope"))
  positions = make_positions(nope, np.zeros(B, int), T)
  np.testing.assert_array_equal(logits_at(nope, make_tokens, positions),
                                logits_at(make_model("none"), make_tokens, positions))


VARIANTS = [
    ("rope", dict(scaling="linear:4")),
    ("rope", dict(scaling="ntk:4")),
    ("rope", dict(scaling="yarn:4:16")),
    ("rope", dict(fraction=0.5)),
    ("rope", dict(fraction=0.5, partial="p_rope", scaling="yarn:2:8")),
    ("rope", dict(layer_pattern="nope,rope")),
    ("randomized:rope", dict(scaling="ntk:4")),
    ("rope_pp", dict(scaling="yarn:4:16", mode="eh")),
    ("tape", dict(scaling="yarn:4:16")),
]


@pytest.mark.parametrize("name,options", VARIANTS, ids=[f"{n}-{o}" for n, o in VARIANTS])
def test_every_variant_is_translation_invariant(name, options, make_model, make_positions,
                                                make_tokens):
  model = make_model(name, encoding_options=options)
  positions = make_positions(model, np.array([0, 2]), T)
  np.testing.assert_allclose(logits_at(model, make_tokens, positions + 37),
                             logits_at(model, make_tokens, positions), atol=1e-4, rtol=1e-4)


def test_variants_change_the_logits(make_model, make_positions, make_tokens):
  positions = make_positions(make_model(), np.zeros(B, int), T, start=20)
  plain = logits_at(make_model(), make_tokens, positions)
  for options in (dict(scaling="linear:4"), dict(scaling="ntk:4"), dict(scaling="yarn:4:16"),
                  dict(fraction=0.5, partial="p_rope"), dict(layer_pattern="rope,nope")):
    assert not np.allclose(logits_at(make_model(encoding_options=options), make_tokens,
                                     positions), plain, atol=1e-5), options


def test_linear_model_at_s_times_positions_equals_plain_rope(make_model, make_positions,
                                                             make_tokens):
  positions = make_positions(make_model(), np.array([0, 3]), T, start=11)
  interpolated = make_model(encoding_options=dict(scaling="linear:3"))
  np.testing.assert_allclose(logits_at(interpolated, make_tokens, 3 * positions),
                             logits_at(make_model(), make_tokens, positions), atol=1e-5)


# ---------------------------------------------------------------- layer patterns


def test_layer_pattern_repeats_over_the_layers(make_model, make_positions):
  model = make_model("rope", layers=4, encoding_options=dict(layer_pattern="rope, nope"))
  layers = [block.attn.encoding for block in model.blocks]
  assert [type(layer) for layer in layers] == [RopeLayer, LayerEncoding] * 2
  q, k = (jnp.asarray(np.random.default_rng(i).normal(size=(B, T, 4, 8)), jnp.float32)
          for i in range(2))
  positions = make_positions(model, np.zeros(B, int), T, start=9)
  q_out, k_out = layers[1].queries_keys(q, k, positions, None)
  assert q_out is q and k_out is k
  assert not np.allclose(layers[0].queries_keys(q, k, positions, None)[0], q)


def test_layer_pattern_errors_name_the_pattern(make_model):
  with pytest.raises(ValueError, match=r"layer_pattern 'rope,nope' has 2 entries: "
                                       r"model.layers=3 must be a multiple of 2"):
    make_model("rope", layers=3, encoding_options=dict(layer_pattern="rope,nope"))
  with pytest.raises(ValueError, match=r"layer_pattern 'rope,alibi'.*\['alibi'\].*rope, nope"):
    make_model("rope", encoding_options=dict(layer_pattern="rope,alibi"))


def test_looped_model_patterns_its_block(make_model):
  model = make_model("rope", looped=True, recurrences=2, test_recurrences=2,
                     encoding_options=dict(layer_pattern="nope,rope"))
  assert [type(b.attn.encoding) for b in model.blocks] == [LayerEncoding, RopeLayer]


def test_cached_decoding_of_yarn_with_a_layer_pattern(make_model, make_positions, make_tokens):
  model = make_model("rope", encoding_options=dict(scaling="yarn:4:16", fraction=0.5,
                                                   partial="p_rope", layer_pattern="rope,nope"))
  tokens = make_tokens(0, B, T)
  positions = make_positions(model, np.zeros(B, int), T, start=5)
  cache = model.init_cache(B, T)
  prefill, cache = model.decode(tokens[:, :5], positions[:, :5], cache)
  steps = [prefill]
  for t in range(5, T):
    logits, cache = model.decode(tokens[:, t:t + 1], positions[:, t:t + 1], cache)
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, axis=1), model(tokens, positions),
                             atol=2e-5, rtol=2e-5)


# ---------------------------------------------------------------- evaluation-time scaling


def test_with_rope_scaling_copies_the_config(make_config):
  cfg = make_config("randomized:rope", encoding_options=dict(base=500.0))
  scaled = models.with_rope_scaling(cfg, "yarn:4:64")
  assert dict(scaled.encoding_options) == dict(base=500.0, scaling="yarn:4:64")
  assert dict(cfg.encoding_options) == dict(base=500.0)
  with pytest.raises(ValueError, match="'alibi' takes no RoPE scaling.*rope, rope_pp, tape"):
    models.with_rope_scaling(make_config("alibi"), "linear:2")
  with pytest.raises(ValueError, match="'lin:2' unknown"):
    models.with_rope_scaling(cfg, "lin:2")


def test_trained_parameters_evaluate_under_another_scaling(make_config, make_positions,
                                                           make_tokens):
  """Model A (no scaling) stands for a trained model; its parameters are loaded into models
  built from `with_rope_scaling` (another seed, so nothing matches by accident)."""
  cfg = make_config("rope")
  trained = models.build(cfg, rngs=nnx.Rngs(0))
  params = nnx.state(trained, nnx.Param)

  def evaluated(spec):
    model = models.build(models.with_rope_scaling(cfg, spec), rngs=nnx.Rngs(1))
    nnx.update(model, params)
    return model

  positions = make_positions(trained, np.array([0, 2]), T, start=7)
  tokens = make_tokens(3, B, T)
  reloaded = evaluated("linear:1")
  np.testing.assert_array_equal(reloaded(tokens, positions), trained(tokens, positions))
  # As the train loop evaluates: the trained state merged into the graph of the scaled model.
  graphdef, _ = nnx.split(evaluated("yarn:2:8"))
  forward = jax.jit(lambda state, tokens, positions: nnx.merge(graphdef, state)(tokens,
                                                                                positions))
  state = nnx.split(trained)[1]
  np.testing.assert_allclose(forward(state, tokens, positions),
                             evaluated("yarn:2:8")(tokens, positions), atol=1e-6)
  np.testing.assert_allclose(evaluated("linear:2")(tokens, 2 * positions),
                             trained(tokens, positions), atol=1e-5)
  assert not np.allclose(forward(state, tokens, positions), trained(tokens, positions),
                         atol=1e-5)
