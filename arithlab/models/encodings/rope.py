"""Rotary position embedding (Su et al. 2021), interleaved pairs, optional partial rotation.

Pairs (x_2n, x_2n+1) of the first `rotary_dims` features of every head are rotated by the
angle pos * theta_n, theta_n = base^(-2n / rotary_dims) (papers.md §8 with d = rotary_dims);
the remaining features pass through. q and k are rotated with their own position IDs, so the
score depends on the IDs only through their difference. Multi-level `[B, T, L]` IDs are
refused (ValueError): pick the level in the data pipeline.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            single_level)


def rotary_dims(head_dim: int, fraction: float) -> int:
  """The even number of features per head that rotate: floor(fraction * K) rounded down to even."""
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"rope fraction must be in (0, 1], got {fraction}")
  dims = int(fraction * head_dim) // 2 * 2
  if dims == 0:
    raise ValueError(f"rope fraction {fraction} rotates no feature of head_dim {head_dim}")
  return dims


def rope_angles(ids_BxT: jax.Array, dims: int, base: float) -> jax.Array:
  """float32 [B, T, dims/2]: angle ids * theta_n, theta_n = base^(-2n/dims), n < dims/2."""
  theta_F = base ** (-jnp.arange(0, dims, 2, dtype=jnp.float32) / dims)
  return ids_BxT.astype(jnp.float32)[..., None] * theta_F


def rotate_pairs_90(x: jax.Array) -> jax.Array:
  """Rotates every pair (x_2n, x_2n+1) of the last axis by +90 degrees: (-x_2n+1, x_2n)."""
  pairs = x.reshape(*x.shape[:-1], -1, 2)
  return jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)


def pair_cos_sin(angles_BxTxF: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cos, sin) float32 [B, T, 1, 2F]: each angle repeated for both members of its pair."""
  cos = jnp.repeat(jnp.cos(angles_BxTxF), 2, axis=-1)[:, :, None, :]
  sin = jnp.repeat(jnp.sin(angles_BxTxF), 2, axis=-1)[:, :, None, :]
  return cos, sin


def apply_rotary(x_BxTxHxK: jax.Array, angles_BxTxF: jax.Array) -> jax.Array:
  """Rotates the first 2F features of every head by the angles; same shape and dtype."""
  rot = 2 * angles_BxTxF.shape[-1]
  cos, sin = pair_cos_sin(angles_BxTxF)
  head = x_BxTxHxK[..., :rot].astype(jnp.float32)
  rotated = head * cos + rotate_pairs_90(head) * sin
  return jnp.concatenate([rotated.astype(x_BxTxHxK.dtype), x_BxTxHxK[..., rot:]], axis=-1)


class RopeLayer(LayerEncoding):
  """Rotates q and k of the new tokens by their position IDs."""

  def __init__(self, name: str, dims: int, base: float):
    self.name = name
    self.dims = dims
    self.base = base

  def queries_keys(self, q_BxTxQxK, k_BxTxGxK, positions, state):
    del state
    angles = rope_angles(single_level(positions, self.name), self.dims, self.base)
    return apply_rotary(q_BxTxQxK, angles), apply_rotary(k_BxTxGxK, angles)


@ENCODINGS.register("rope")
class Rope(Encoding):
  """Options: base (10000), fraction of each head's features that rotate (1.0)."""

  def __init__(self, dims: Dims, *, rngs, base: float = 10000.0, fraction: float = 1.0):
    del rngs
    super().__init__(dims)
    self.base = base
    self.rotary_dims = rotary_dims(dims.head_dim, fraction)

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    del rngs
    return RopeLayer(self.name, self.rotary_dims, self.base)
