"""Cached decoding (left-padded prefill, then one token a step) equals the uncached pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from arithlab.models.encodings import ENCODINGS, Encoding, LayerEncoding

PAD_B = np.array([0, 3])  # left pads of the two prompts
PROMPT, STEPS = 6, 3


def cached_and_uncached(model, tokens_BxT, positions, mask_BxT):
  """Logits [B, T, V] of prefill(PROMPT tokens) + STEPS single-token decodes, and uncached."""
  cache = model.init_cache(tokens_BxT.shape[0], PROMPT + STEPS + 2)
  logits, cache = model.decode(tokens_BxT[:, :PROMPT], positions[:, :PROMPT], cache,
                               mask_BxT=mask_BxT[:, :PROMPT])
  steps = [logits]
  for t in range(PROMPT, PROMPT + STEPS):
    logits, cache = model.decode(tokens_BxT[:, t:t + 1], positions[:, t:t + 1], cache)
    steps.append(logits)
  assert int(cache["index"]) == PROMPT + STEPS
  return jnp.concatenate(steps, axis=1), model(tokens_BxT, positions, mask_BxT=mask_BxT)


def padded_inputs(model, make_positions, make_tokens):
  length = PROMPT + STEPS
  tokens = make_tokens(0, len(PAD_B), length)
  mask = jnp.asarray(np.arange(length)[None] >= PAD_B[:, None])
  return jnp.where(mask, tokens, 0), make_positions(model, PAD_B, length), mask


def assert_equal_on_real_tokens(cached, uncached, mask):
  np.testing.assert_allclose(np.asarray(cached)[np.asarray(mask)],
                             np.asarray(uncached)[np.asarray(mask)], atol=2e-5, rtol=2e-5)


def test_cache_equals_forward(encoding_name, make_model, make_positions, make_tokens):
  model = make_model(encoding_name)
  tokens, positions, mask = padded_inputs(model, make_positions, make_tokens)
  cached, uncached = cached_and_uncached(model, tokens, positions, mask)
  assert_equal_on_real_tokens(cached, uncached, mask)


@pytest.mark.parametrize("overrides", [
    dict(looped=True, recurrences=3, test_recurrences=3),
    dict(temperature="log_n", temperature_base=4.0),
    dict(activation="swiglu", norm="rmsnorm", use_bias=True, tied_embeddings=False),
], ids=["looped", "log_n", "swiglu_rmsnorm_bias_untied"])
def test_cache_equals_forward_variants(overrides, make_model, make_positions, make_tokens):
  model = make_model("alibi", **overrides)
  tokens, positions, mask = padded_inputs(model, make_positions, make_tokens)
  cached, uncached = cached_and_uncached(model, tokens, positions, mask)
  assert_equal_on_real_tokens(cached, uncached, mask)


def test_looped_cache_uses_test_recurrences(make_model):
  model = make_model("rope", looped=True, recurrences=2, test_recurrences=5)
  assert len(model.init_cache(1, 4)["layers"]) == 5 * 2
  assert len(model.init_cache(1, 4, recurrences=3)["layers"]) == 3 * 2


def test_decode_jits_with_static_shapes(make_model, make_positions, make_tokens):
  model = make_model("rope")
  graphdef, params = nnx.split(model)

  @jax.jit
  def step(params, tokens, positions, cache):
    return nnx.merge(graphdef, params).decode(tokens, positions, cache)

  tokens = make_tokens(1, 2, 3)
  positions = make_positions(model, np.zeros(2, int), 3)
  cache = model.init_cache(2, 3)
  outs = []
  for t in range(3):
    logits, cache = step(params, tokens[:, t:t + 1], positions[:, t:t + 1], cache)
    outs.append(logits)
  assert step._cache_size() == 1
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), model(tokens, positions),
                             atol=2e-5, rtol=2e-5)


def test_encoder_model_refuses_decode(make_model):
  model = make_model("rope", causal=False)
  with pytest.raises(ValueError, match="causal"):
    model.decode(jnp.ones((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32),
                 model.init_cache(1, 2))


class ToyLayer(LayerEncoding):
  """Uses every hook, the way TAPE does: per-token features that q, k, the bias, the cache
  and the attention weights all touch, updated after attention and after the MLP."""

  def queries_keys(self, q_BxTxQxK, k_BxTxGxK, positions, state):
    del positions
    return q_BxTxQxK * (1 + state[..., :1]), k_BxTxGxK * (1 + state[..., 1:])

  def key_data(self, positions, state):
    return {"features": state, "ids": positions * 2}

  def bias(self, query_positions, key_positions, state):
    return state[..., 0].transpose(0, 2, 1)[..., None] * 0.1 + key_positions[:, None, None] * 0.01

  def after_attention(self, state, probs_BxHxTxS, key_data):
    return state + jnp.einsum("BHTS,BSHF->BTHF", probs_BxHxTxS, key_data["features"])

  def after_mlp(self, state, x_BxTxD):
    return state + jnp.tanh(x_BxTxD[..., :state.shape[2] * 2]).reshape(state.shape)


class Toy(Encoding):

  def __init__(self, dims, *, rngs):
    del rngs
    super().__init__(dims)

  def init_state(self, positions):
    angle = positions.astype(jnp.float32)[..., None, None] * jnp.ones((self.dims.heads, 2))
    return jnp.sin(angle) * 0.5

  def layer(self, rngs):
    del rngs
    return ToyLayer()


def test_cache_threads_state_and_key_data_of_every_hook(monkeypatch, make_model, make_positions,
                                                        make_tokens):
  monkeypatch.setitem(ENCODINGS._entries, "toy", Toy)
  model = make_model("toy", looped=True, recurrences=2, test_recurrences=2)
  assert model.init_cache(2, 5)["layers"][0]["features"].shape == (2, 5, 4, 2)
  tokens, positions, mask = padded_inputs(model, make_positions, make_tokens)
  cached, uncached = cached_and_uncached(model, tokens, positions, mask)
  assert_equal_on_real_tokens(cached, uncached, mask)
