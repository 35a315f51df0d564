"""T5 relative position bias (Raffel et al. 2020): a learned scalar per head per distance bucket.

The bucket of a query at position ID i and a key at ID j follows T5's
`_relative_position_bucket` (Mesh TensorFlow transformer_layers.py; the same function in
Hugging Face's modeling_t5.py), with relative position r = j - i (memory - query):
  decoder (causal): n = max(i - j, 0), `num_buckets` buckets for n;
  encoder (bidirectional): half the buckets for keys left of or at the query (r <= 0), half
    (offset num_buckets / 2) for keys right of it (r > 0), n = |r|.
Of the b buckets for n, the first b/2 hold n exactly (n < b/2); the rest are log-spaced up
to `max_distance`: b/2 + floor(log(n / (b/2)) / log(max_distance / (b/2)) * (b - b/2)),
capped at b - 1, so every distance >= max_distance shares the last bucket.

As in T5, one table [num_buckets, H] serves every layer (T5 computes the bias in the first
layer of a stack and reuses it in all the others). The bias depends on i - j only, so the
model is translation invariant in the position IDs. (The relative encoding of the
randomized-PE reference code is a different, sinusoidal Transformer-XL scheme with a known
sign bug, google-deepmind/randomized_positional_encodings issue #2; nothing here comes
from it.)
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            normal_init, single_level)


def relative_position_bucket(relative_BxTxS: jax.Array, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> jax.Array:
  """int32 buckets in [0, num_buckets), same shape as the int relative positions j - i."""
  offset = 0
  if bidirectional:
    num_buckets //= 2
    offset = jnp.where(relative_BxTxS > 0, num_buckets, 0)
    n = jnp.abs(relative_BxTxS)
  else:
    n = jnp.maximum(-relative_BxTxS, 0)
  max_exact = num_buckets // 2
  log_ratio = jnp.log(jnp.maximum(n, 1).astype(jnp.float32) / max_exact)
  scaled = log_ratio / math.log(max_distance / max_exact) * (num_buckets - max_exact)
  large = jnp.minimum(max_exact + scaled.astype(jnp.int32), num_buckets - 1)
  return (offset + jnp.where(n < max_exact, n, large)).astype(jnp.int32)


class T5Layer(LayerEncoding):
  """Looks up the shared bucket table."""

  def __init__(self, name: str, table: nnx.Param, bidirectional: bool, num_buckets: int,
               max_distance: int):
    self.name = name
    self.table = table
    self.bidirectional = bidirectional
    self.num_buckets = num_buckets
    self.max_distance = max_distance

  def bias(self, query_positions, key_positions, state):
    """float32 [B, H, T, S]: table[bucket(j - i)] for query IDs `[B, T]`, key IDs `[B, S]`."""
    del state
    relative_BxTxS = (single_level(key_positions, self.name)[:, None, :]
                      - single_level(query_positions, self.name)[:, :, None])
    buckets_BxTxS = relative_position_bucket(relative_BxTxS, self.bidirectional,
                                             self.num_buckets, self.max_distance)
    return self.table[...][buckets_BxTxS].transpose(0, 3, 1, 2)


@ENCODINGS.register("t5")
class T5Bias(Encoding):
  """Options: num_buckets (32), max_distance (128). Bidirectional buckets in encoder mode."""

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs, num_buckets: int = 32,
               max_distance: int = 128):
    super().__init__(dims)
    bidirectional = not dims.causal
    exact = num_buckets // (4 if bidirectional else 2)
    if exact < 1 or num_buckets % 2:
      raise ValueError(f"t5 num_buckets must be even and >= {4 if bidirectional else 2}, "
                       f"got {num_buckets}")
    if max_distance <= exact:
      raise ValueError(f"t5 max_distance must exceed the {exact} exact buckets, got "
                       f"{max_distance}")
    self.bidirectional = bidirectional
    self.num_buckets = num_buckets
    self.max_distance = max_distance
    self.table = nnx.Param(normal_init()(rngs.params(), (num_buckets, dims.heads), jnp.float32),
                           logical=(None, "heads"))

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    del rngs
    return T5Layer(self.name, self.table, self.bidirectional, self.num_buckets,
                   self.max_distance)
