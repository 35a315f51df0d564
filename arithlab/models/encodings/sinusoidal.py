"""Sinusoidal absolute encoding (Vaswani et al. 2017) evaluated at the given position IDs."""

import jax
import jax.numpy as jnp

from arithlab.models.encodings.base import ENCODINGS, Dims, Encoding, single_level


def sinusoid_BxTxD(ids_BxT: jax.Array, d_model: int, base: float) -> jax.Array:
  """float32 [B, T, D]: PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(same). D even."""
  inv_freq = base ** (-jnp.arange(0, d_model, 2, dtype=jnp.float32) / d_model)
  angles_BxTxF = ids_BxT.astype(jnp.float32)[..., None] * inv_freq
  return jnp.stack([jnp.sin(angles_BxTxF), jnp.cos(angles_BxTxF)], axis=-1).reshape(
      *ids_BxT.shape, d_model)


@ENCODINGS.register("sinusoidal")
class Sinusoidal(Encoding):
  """x += PE[positions]; any integer ID works (no limit)."""

  def __init__(self, dims: Dims, *, rngs, base: float = 10000.0):
    del rngs
    super().__init__(dims)
    if dims.d_model % 2:
      raise ValueError(f"encoding 'sinusoidal' needs an even d_model, got {dims.d_model}")
    self.base = base

  def embed(self, x_BxTxD: jax.Array, positions: jax.Array) -> jax.Array:
    ids_BxT = single_level(positions, self.name)
    return x_BxTxD + sinusoid_BxTxD(ids_BxT, self.dims.d_model, self.base).astype(x_BxTxD.dtype)
