"""Tiny models and inputs shared by the tests of arithlab.models (and of new encodings)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from arithlab import models
from arithlab.models.encodings import ENCODINGS, encoding_class

# Encodings whose IDs are multi-level in these tests ([B, T, LEVELS[name]]); others [B, T].
LEVELS = {"coupling": 2}

# Every registered encoding plus the randomized variant of every randomizable one.
ALL_ENCODINGS = ENCODINGS.names() + [
    f"randomized:{name}" for name in ENCODINGS.names() if encoding_class(name).randomizable]

VOCAB = 16


def tiny_config(encoding: str = "rope", **overrides):
  """d_model 32, 2 layers, 4 heads, vocab 16, max_len 64: the size of every model test."""
  cfg = models.default_model_config()
  cfg.update(layers=2, d_model=32, heads=4, d_ff=64, vocab_size=VOCAB, max_len=64,
             encoding=encoding, position_levels=LEVELS.get(encoding.removeprefix("randomized:"),
                                                           0))
  cfg.update(overrides)
  return cfg


def tiny_model(encoding: str = "rope", seed: int = 0, **overrides) -> models.Transformer:
  return models.build(tiny_config(encoding, **overrides), rngs=nnx.Rngs(seed))


def positions_for(model: models.Transformer, pad_B: np.ndarray, length: int,
                  start: int = 1) -> jnp.ndarray:
  """int32 position IDs [B, T(, L)]: 0 on the pad_B[b] left pads, then start, start+1, ...

  Multi-level IDs repeat the sequence on level 0 and put the token index mod 3 on the others
  (any integer IDs do for the model's properties).
  """
  t_T = np.arange(length)
  ids_BxT = np.where(t_T[None] >= pad_B[:, None], t_T[None] - pad_B[:, None] + start, 0)
  if model.levels:
    extra = np.broadcast_to((t_T % 3)[None, :, None], (*ids_BxT.shape, model.levels - 1))
    ids_BxT = np.concatenate([ids_BxT[..., None], extra], axis=-1)
  return jnp.asarray(ids_BxT, jnp.int32)


def random_tokens(seed: int, batch: int, length: int) -> jnp.ndarray:
  return jnp.asarray(np.random.default_rng(seed).integers(1, VOCAB, (batch, length)), jnp.int32)


@pytest.fixture
def make_config():
  """The factory `tiny_config(encoding="rope", **config overrides)`."""
  return tiny_config


@pytest.fixture
def make_model():
  """The factory `tiny_model(encoding="rope", seed=0, **config overrides)`."""
  return tiny_model


@pytest.fixture
def make_positions():
  """The function `positions_for(model, pad_B, length, start=1)`."""
  return positions_for


@pytest.fixture
def make_tokens():
  """The function `random_tokens(seed, batch, length)`."""
  return random_tokens


@pytest.fixture(params=ALL_ENCODINGS)
def encoding_name(request) -> str:
  return request.param
