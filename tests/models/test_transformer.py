"""The transformer: paper configs' parameter counts, encoder mode, masks, looped blocks,
temperature, dropout, dtypes, sharding metadata and config validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from arithlab import models
from arithlab.models.attention import log_n_scale
from arithlab.models.sharding import DEFAULT_RULES, logical_to_spec

# Lee et al.'s character set for addition (the ten digits, "+", "=", "$" and newline: 14
# characters) plus our PAD, BOS and EOS: an explicit vocabulary of 17.
LEE_VOCAB = 17


def expected_params(layers, d, d_ff, vocab, max_len):
  """Pre-LN GPT with biases, LayerNorm (scale + bias), tied embeddings, learned positions."""
  attention = 4 * (d * d + d)
  mlp = d * d_ff + d_ff + d_ff * d + d
  norms = 2 * 2 * d
  return layers * (attention + mlp + norms) + 2 * d + max_len * d + vocab * d


def test_lee_config_has_10_6m_parameters():
  model = nnx.eval_shape(lambda: models.build(models.lee_config(LEE_VOCAB), rngs=nnx.Rngs(0)))
  count = models.param_count(model)
  assert count == expected_params(6, 384, 1536, LEE_VOCAB, 256) == 10_752_384
  # nanoGPT reports the count without the position table: 10.65M, the paper's ~10.6M.
  assert count - 256 * 384 == 10_654_080


def test_shen_config_has_about_100m_parameters():
  cfg = models.shen_config(LEE_VOCAB)
  model = nnx.eval_shape(lambda: models.build(cfg, rngs=nnx.Rngs(0)))
  count = models.param_count(model)
  assert count == expected_params(12, 768, 3072, LEE_VOCAB, 1024)
  assert 80e6 < count < 100e6


def test_padding_is_invisible_to_real_tokens(make_model, make_positions, make_tokens):
  model = make_model("rope")
  tokens = make_tokens(0, 1, 6)
  padded = jnp.concatenate([jnp.zeros((1, 3), jnp.int32), tokens], axis=1)
  mask = jnp.arange(9)[None] >= 3
  logits = model(tokens, make_positions(model, np.array([0]), 6))
  padded_logits = model(padded, make_positions(model, np.array([3]), 9), mask_BxT=mask)
  np.testing.assert_allclose(padded_logits[:, 3:], logits, atol=1e-5)


def test_encoder_mode_sees_later_tokens(make_model, make_positions, make_tokens):
  model = make_model("rope", causal=False)
  tokens = make_tokens(0, 2, 6)
  positions = make_positions(model, np.zeros(2, int), 6)
  changed = tokens.at[:, -1].set(tokens[:, -1] % 15 + 1)
  assert not np.allclose(model(tokens, positions)[:, 0], model(changed, positions)[:, 0])


def test_looped_once_is_the_plain_model(make_model, make_positions, make_tokens):
  tokens = make_tokens(1, 2, 6)
  plain = make_model("rope")
  looped = make_model("rope", looped=True, recurrences=1)
  positions = make_positions(plain, np.zeros(2, int), 6)
  np.testing.assert_allclose(looped(tokens, positions), plain(tokens, positions), atol=1e-6)
  assert not np.allclose(looped(tokens, positions, recurrences=3), plain(tokens, positions))


def test_looped_model_has_the_block_parameters_only(make_model):
  assert (models.param_count(make_model("rope", looped=True, recurrences=4, test_recurrences=8))
          == models.param_count(make_model("rope")))


def test_log_n_scale_known_values():
  allowed = jnp.tril(jnp.ones((4, 4), bool))[None]
  np.testing.assert_allclose(log_n_scale(allowed, 2.0)[0, 0, :, 0], [0, 1, np.log2(3), 2],
                             atol=1e-6)


def test_log_n_temperature_is_one_at_the_base_length(make_model, make_positions, make_tokens):
  tokens = make_tokens(2, 2, 8)
  plain = make_model("rope", causal=False)
  scaled = make_model("rope", causal=False, temperature="log_n", temperature_base=8.0)
  positions = make_positions(plain, np.zeros(2, int), 8)
  np.testing.assert_allclose(scaled(tokens, positions), plain(tokens, positions), atol=1e-5)
  assert not np.allclose(scaled(tokens[:, :4], positions[:, :4]),
                         plain(tokens[:, :4], positions[:, :4]))


def test_dropout_only_when_not_deterministic(make_model, make_positions, make_tokens):
  model = make_model("rope", dropout=0.5)
  tokens = make_tokens(0, 2, 6)
  positions = make_positions(model, np.zeros(2, int), 6)
  np.testing.assert_array_equal(model(tokens, positions), model(tokens, positions))
  assert not np.allclose(model(tokens, positions, deterministic=False), model(tokens, positions))


def test_bfloat16_compute_keeps_float32_params_and_logits(make_model, make_positions,
                                                          make_tokens):
  model = make_model("rope", dtype="bfloat16")
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert {p.dtype for p in params} == {jnp.dtype(jnp.float32)}
  tokens = make_tokens(0, 2, 6)
  positions = make_positions(model, np.zeros(2, int), 6)
  logits = model(tokens, positions)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, make_model("rope")(tokens, positions), atol=0.1)


def test_every_param_has_logical_names(make_model):
  for encoding in ("learned", "coupling"):
    model = make_model(encoding, use_bias=True, tied_embeddings=False)
    for _, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
      names = var.get_metadata()["logical"]
      assert len(names) == var.ndim
      assert set(names) <= {None, "batch", "length", "embed", "heads", "kv", "mlp", "vocab"}


def test_logical_to_spec():
  assert logical_to_spec(("embed", "mlp"), DEFAULT_RULES) == P("fsdp", "tensor")
  assert logical_to_spec(("batch", "length", "embed"), DEFAULT_RULES) == P(("data", "fsdp"),
                                                                           None, None)
  assert logical_to_spec(("embed", "heads", "kv"), DEFAULT_RULES, ("data",)) == P(None, None,
                                                                                  None)
  assert logical_to_spec(("vocab", "embed"), DEFAULT_RULES) == P("tensor", "fsdp")


def test_rules_from_json_lists_keep_the_model_hashable(make_model):
  model = make_model("rope", logical_rules=[[name, list(rule) if isinstance(rule, tuple) else rule]
                                            for name, rule in DEFAULT_RULES])
  hash(nnx.graphdef(model))
  assert model.rules == DEFAULT_RULES


def test_partition_specs_follow_the_metadata(make_model):
  model = make_model("rope")
  specs = models.partition_specs(nnx.state(model, nnx.Param), DEFAULT_RULES)
  assert specs["embed"]["embedding"].get_value() == P("tensor", "fsdp")
  assert specs["blocks"][0]["mlp"]["down"]["kernel"].get_value() == P("tensor", "fsdp")


def test_forward_under_a_mesh_equals_no_mesh(make_model, make_positions, make_tokens):
  tokens = make_tokens(0, 2, 6)
  model = make_model("rope")
  positions = make_positions(model, np.zeros(2, int), 6)
  mesh = jax.make_mesh((1, 1, 1), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  with jax.set_mesh(mesh):
    meshed = make_model("rope")
    logits = jax.jit(lambda t, p: meshed(t, p))(tokens, positions)
  np.testing.assert_allclose(logits, model(tokens, positions), atol=1e-6)


@pytest.mark.parametrize("field,value,message", [
    ("norm", "batchnorm", "layernorm, rmsnorm"),
    ("activation", "relu", "gelu, swiglu"),
    ("dtype", "float16", "float32, bfloat16"),
    ("remat", "everything", "none, full, dots"),
    ("heads", 5, "multiple of model.heads=5"),
    ("recurrences", 2, "need model.looped=True"),
])
def test_validate_names_the_bad_field(field, value, message, make_config):
  cfg = make_config()
  cfg[field] = value
  with pytest.raises(ValueError, match=message):
    models.validate(cfg)


def test_positions_shape_must_match(make_model):
  with pytest.raises(ValueError, match="position_levels=0"):
    make_model("rope")(jnp.ones((1, 3), jnp.int32), jnp.zeros((1, 4), jnp.int32))


@pytest.mark.parametrize("remat", ["full", "dots"])
@pytest.mark.parametrize("encoding,overrides", [
    ("rope", {}), ("tape", {}), ("fire", {}), ("rope", {"looped": True, "recurrences": 2}),
    ("learned", {"dropout": 0.2})])
def test_remat_keeps_logits_and_gradients(remat, encoding, overrides, make_model,
                                          make_positions, make_tokens):
  tokens = make_tokens(3, 2, 7)

  def loss_and_grads(model):
    positions = make_positions(model, np.array([0, 2]), 7)
    mask = jnp.arange(7)[None] >= jnp.array([[0], [2]])

    def loss(m):
      return jnp.mean(m(tokens, positions, mask_BxT=mask, deterministic=False) ** 2)

    return nnx.jit(nnx.value_and_grad(loss))(model)

  plain_loss, plain_grads = loss_and_grads(make_model(encoding, **overrides))
  remat_loss, remat_grads = loss_and_grads(make_model(encoding, remat=remat, **overrides))
  np.testing.assert_allclose(remat_loss, plain_loss, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               nnx.state(remat_grads), nnx.state(plain_grads))
