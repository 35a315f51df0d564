"""Every encoding: shapes, causality; RoPE/ALiBi known answers and translation invariance;
length limits and the registry's errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arithlab.models.encodings import ENCODINGS
from arithlab.models.encodings.alibi import alibi_bias, alibi_slopes
from arithlab.models.encodings.rope import apply_rotary, rope_angles, rotary_dims
from arithlab.models.encodings.sinusoidal import sinusoid_BxTxD

B, T = 2, 8


def test_shapes_and_dtype(encoding_name, make_model, make_positions, make_tokens):
  model = make_model(encoding_name)
  logits = model(make_tokens(0, B, T), make_positions(model, np.zeros(B, int), T))
  assert logits.shape == (B, T, model.embed.num_embeddings)
  assert logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()


def test_causal(encoding_name, make_model, make_positions, make_tokens):
  model = make_model(encoding_name)
  positions = make_positions(model, np.zeros(B, int), T)
  tokens = make_tokens(0, B, T)
  changed = tokens.at[:, 5:].set((tokens[:, 5:] % 15) + 1)
  before, after = model(tokens, positions), model(changed, positions)
  np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-6)
  assert not np.allclose(before[:, 5:], after[:, 5:])


@pytest.mark.parametrize("name", ["rope", "alibi", "none", "randomized:rope",
                                  "randomized:alibi"])
def test_translation_invariance(name, make_model, make_positions, make_tokens):
  model = make_model(name)
  tokens = make_tokens(3, B, T)
  positions = make_positions(model, np.zeros(B, int), T)
  np.testing.assert_allclose(model(tokens, positions), model(tokens, positions + 37),
                             atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["learned", "sinusoidal", "abacus"])
def test_absolute_encodings_see_the_shift(name, make_model, make_positions, make_tokens):
  model = make_model(name)
  tokens = make_tokens(3, B, T)
  positions = make_positions(model, np.zeros(B, int), T)
  assert not np.allclose(model(tokens, positions), model(tokens, positions + 5))


def test_rope_rotates_pairs_by_position_times_theta():
  q = jnp.zeros((1, 1, 1, 8)).at[..., 2].set(1.0)  # unit vector on pair n=1
  angles = rope_angles(jnp.array([[3]]), 8, 100.0)
  theta_1 = 100.0 ** (-2 / 8)
  np.testing.assert_allclose(apply_rotary(q, angles)[0, 0, 0],
                             [0, 0, np.cos(3 * theta_1), np.sin(3 * theta_1), 0, 0, 0, 0],
                             atol=1e-6)


def test_rope_partial_rotation_leaves_the_rest():
  assert rotary_dims(8, 0.5) == 4 and rotary_dims(10, 0.5) == 4
  x = jnp.arange(16.0).reshape(1, 1, 2, 8)
  out = apply_rotary(x, rope_angles(jnp.array([[5]]), 4, 10000.0))
  np.testing.assert_array_equal(out[..., 4:], x[..., 4:])
  assert not np.allclose(out[..., :4], x[..., :4])
  with pytest.raises(ValueError, match="fraction"):
    rotary_dims(8, 0.1)


@settings(max_examples=20, deadline=None)
@given(i=st.integers(0, 3000), j=st.integers(0, 3000), shift=st.integers(-500, 500))
def test_rope_score_depends_on_the_difference_only(i, j, shift):
  rng = np.random.default_rng(0)
  q, k = (jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32) for _ in range(2))

  def score(a, b):
    rq = apply_rotary(q, rope_angles(jnp.array([[a]]), 16, 10000.0))
    rk = apply_rotary(k, rope_angles(jnp.array([[b]]), 16, 10000.0))
    return float((rq * rk).sum())

  shift = max(shift, -min(i, j))
  assert score(i, j) == pytest.approx(score(i + shift, j + shift), abs=2e-3)


def test_alibi_slopes_and_bias_known_answers():
  np.testing.assert_allclose(alibi_slopes(8), [2.0 ** -k for k in range(1, 9)])
  causal = alibi_bias(jnp.array([[5]]), jnp.array([[2, 5]]), 8, causal=True)
  np.testing.assert_allclose(causal[0, :, 0, 0], -3 * alibi_slopes(8))
  np.testing.assert_allclose(causal[0, :, 0, 1], 0.0)
  encoder = alibi_bias(jnp.array([[2]]), jnp.array([[5]]), 8, causal=False)
  np.testing.assert_allclose(encoder[0, :, 0, 0], -3 * alibi_slopes(8))


def test_sinusoid_known_answer():
  pe = sinusoid_BxTxD(jnp.array([[0, 2]]), 4, 10000.0)
  np.testing.assert_allclose(pe[0, 0], [0, 1, 0, 1])
  np.testing.assert_allclose(pe[0, 1], [np.sin(2), np.cos(2), np.sin(0.02), np.cos(0.02)],
                             atol=1e-6)


@pytest.mark.parametrize("name", ["learned", "abacus"])
def test_table_embedding_adds_the_row_of_each_id(name, make_model):
  model = make_model(name)
  x = jnp.zeros((1, 3, 32))
  ids = jnp.array([[0, 7, 2]])
  np.testing.assert_allclose(model.encoding.embed(x, ids)[0], model.encoding.table[...][
      jnp.array([0, 7, 2])])


def test_coupling_sums_one_table_per_level(make_model):
  model = make_model("coupling")
  ids = jnp.array([[[3, 1], [4, 0]]])
  tables = model.encoding.tables[...]
  expected = tables[0, jnp.array([3, 4])] + tables[1, jnp.array([1, 0])]
  np.testing.assert_allclose(model.encoding.embed(jnp.zeros((1, 2, 32)), ids)[0], expected,
                             rtol=1e-6)


@pytest.mark.parametrize("name,limit", [("learned", 64), ("coupling", 64),
                                        ("abacus", 1025), ("randomized:rope", 2048),
                                        ("randomized:learned", 2048)])
def test_check_length_names_encoding_and_limit(name, limit, make_model):
  model = make_model(name)
  model.check_length(limit - 1, 10)
  with pytest.raises(ValueError, match=f"{name}.*{limit}"):
    model.check_length(limit, 10)


def test_randomized_positions_must_fit_distinct(make_model):
  model = make_model("randomized:rope", randomized_max_len=100)
  model.check_length(99, 100)
  with pytest.raises(ValueError, match="randomized:rope.*101"):
    model.check_length(99, 101)


def test_unbounded_encodings_accept_any_length(make_model):
  for name in ("rope", "alibi", "sinusoidal", "none"):
    make_model(name).check_length(10 ** 6, 10 ** 6)


def test_abacus_max_id_option(make_model):
  model = make_model("abacus", encoding_options={"max_id": 20})
  assert model.encoding.table.shape == (21, 32)
  with pytest.raises(ValueError, match="abacus.*21"):
    model.check_length(21, 5)


def test_unknown_encoding_lists_the_registry(make_model):
  with pytest.raises(ValueError) as err:
    make_model("rop")
  for name in ENCODINGS.names():
    assert name in str(err.value)


def test_randomized_needs_integer_positions(make_model):
  with pytest.raises(ValueError, match="randomized:<name> works for: .*rope"):
    make_model("randomized:none")


def test_unknown_option_lists_the_valid_ones(make_model):
  with pytest.raises(ValueError, match=r"no option.*'bse'.*\['base', 'fraction', "
                     r"'layer_pattern', 'partial', 'scaling'\]"):
    make_model("rope", encoding_options={"bse": 10.0})


def test_scalar_encodings_refuse_multilevel_ids(make_model):
  model = make_model("rope", position_levels=2)
  with pytest.raises(ValueError, match="'rope' takes position ids of shape \\[B, T\\]"):
    model(jnp.ones((1, 3), jnp.int32), jnp.zeros((1, 3, 2), jnp.int32))


def test_options_reach_the_encoding(make_model):
  model = make_model("rope", encoding_options={"base": 500.0, "fraction": 0.5})
  assert model.encoding.base == 500.0 and model.encoding.rotary_dims == 4
