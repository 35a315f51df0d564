"""Cached decoding (left-padded prefill, then one token a step) equals the uncached pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

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
