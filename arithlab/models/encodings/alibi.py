"""ALiBi (Press et al. 2022): a per-head linear bias on the distance between position IDs."""

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            single_level)


def alibi_slopes(heads: int) -> jax.Array:
  """float32 [H]: m_h = 2^(-8 h / H) for h = 1..H (geometric in the head index)."""
  return 2.0 ** (-8.0 * jnp.arange(1, heads + 1, dtype=jnp.float32) / heads)


def alibi_bias(query_ids_BxT: jax.Array, key_ids_BxS: jax.Array, heads: int,
               causal: bool) -> jax.Array:
  """float32 [B, H, T, S]: -m_h (i - j) (causal) or -m_h |i - j| (non-causal), i, j the IDs."""
  dist_BxTxS = (query_ids_BxT[:, :, None] - key_ids_BxS[:, None, :]).astype(jnp.float32)
  if not causal:
    dist_BxTxS = jnp.abs(dist_BxTxS)
  return -alibi_slopes(heads)[None, :, None, None] * dist_BxTxS[:, None]


class AlibiLayer(LayerEncoding):
  """Adds the ALiBi bias; no parameters."""

  def __init__(self, name: str, heads: int, causal: bool):
    self.name = name
    self.heads = heads
    self.causal = causal

  def bias(self, query_positions, key_positions, state):
    del state
    return alibi_bias(single_level(query_positions, self.name),
                      single_level(key_positions, self.name), self.heads, self.causal)


@ENCODINGS.register("alibi")
class Alibi(Encoding):
  """No options: slopes 2^(-8h/H) from the head count."""

  def __init__(self, dims: Dims, *, rngs):
    del rngs
    super().__init__(dims)

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    del rngs
    return AlibiLayer(self.name, self.dims.heads, self.dims.causal)
