"""KV-cached greedy decoding equals the uncached reference token for token, for every encoding."""

import jax
import numpy as np
import pytest
from flax import nnx

from arithlab import models
from arithlab.models.encodings import ENCODINGS, encoding_class
from arithlab.models.sharding import DEFAULT_RULES
from arithlab.train import decode, mesh
from arithlab.train.step import split

ENCODING_NAMES = ENCODINGS.names() + [
    f"randomized:{n}" for n in ENCODINGS.names() if encoding_class(n).randomizable]
LEVELS = {"coupling": 2}  # encodings tested with [B, T, L] position IDs
VOCAB, PROMPT, ANSWER = 16, 7, 5
LEFT_PADS_B = np.array([0, 2, 4, 1])


def eval_batch(levels: int) -> dict[str, np.ndarray]:
  """Left-padded random prompts; positions count from 1 over real tokens, answers continue them."""
  rng = np.random.default_rng(0)
  real_BxP = np.arange(PROMPT)[None] >= LEFT_PADS_B[:, None]
  prompt_BxP = np.where(real_BxP, rng.integers(1, VOCAB, (len(LEFT_PADS_B), PROMPT)), 0).astype(np.int32)
  prompt_pos_BxP = np.where(real_BxP, np.cumsum(real_BxP, axis=1), 0)
  answer_pos_BxA = prompt_pos_BxP[:, -1:] + 1 + np.arange(ANSWER)[None]
  if levels:
    prompt_pos_BxP = np.stack([prompt_pos_BxP] + [prompt_pos_BxP % 3] * (levels - 1), axis=-1)
    answer_pos_BxA = np.stack([answer_pos_BxA] + [answer_pos_BxA % 3] * (levels - 1), axis=-1)
  return {"prompt": prompt_BxP, "prompt_positions": prompt_pos_BxP.astype(np.int32),
          "answer_positions": answer_pos_BxA.astype(np.int32)}


@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_cached_equals_uncached(encoding):
  cfg = models.default_model_config()
  levels = LEVELS.get(encoding.removeprefix("randomized:"), 0)
  cfg.update(layers=2, d_model=32, heads=4, d_ff=64, vocab_size=VOCAB, max_len=64, encoding=encoding,
             position_levels=levels)
  device_mesh = mesh.make_mesh(dict(data=-1, fsdp=1, tensor=1))
  with jax.set_mesh(device_mesh):
    model = models.build(cfg, rngs=nnx.Rngs(3))
  model_def, params, rng_counts = split(model)
  params, rng_counts = nnx.to_pure_dict(params), nnx.to_pure_dict(rng_counts)
  batch = mesh.replicated_batch(eval_batch(levels), device_mesh, DEFAULT_RULES)
  cached = decode.make_decode(model_def, device_mesh, DEFAULT_RULES)(params, rng_counts, batch)
  uncached = decode.make_decode(model_def, device_mesh, DEFAULT_RULES, cached=False)(params, rng_counts, batch)
  assert cached.shape == (len(LEFT_PADS_B), ANSWER)
  np.testing.assert_array_equal(np.asarray(cached), np.asarray(uncached))
  assert len(np.unique(np.asarray(cached))) > 1  # not a degenerate constant output
