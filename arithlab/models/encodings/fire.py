"""FIRE (Li et al. 2024): a learned function of the progressively interpolated distance.

Per head h, the logit bias of a query with position ID i on a key with position ID j is

  b_h(i, j) = f(psi(i - j) / psi(max(L, i)))_h,   psi(x) = log(|c x| + 1),

f = Linear(1, W) -> ReLU -> Linear(W, H) (W = `mlp_width`, 32), c learnable (init
`init_c` = 0.1). The threshold L is a learnable multiple of `init_threshold` (512):
L = |m * init_threshold| with m learnable, init 1. That is the parameterisation of the
FIRE implementation McLeish et al. ship with their Abacus code (mcleish7/arithmetic,
cramming/architectures/embeddings.py: `init_L` = 512 fixed, `L_multiplier` learnable,
threshold = |L_multiplier * init_L|), which also adds eps = 1e-6 to the normaliser and
gives every attention layer its own FIRE; we do the same. f starts from PyTorch's
nn.Linear default initialisation, U(+-1/sqrt(fan_in)), as there: with a 0.02 normal
initialisation the bias and its gradients would start ~1e-4 small.

Not translation invariant: the normaliser psi(max(L, i)) reads the absolute query ID. While
every query ID is <= L, the bias depends on i - j only (shifting all IDs by a constant that
keeps them <= L changes nothing); beyond L, distances are interpolated into [0, 1]
(b_h(i, 0) = f(1) for every i >= L).

Encoder mode (`causal=False`): keys right of the query (i < j) see the signed input
-psi(j - i) / psi(max(L, i)), so f can tell left from right; the formula itself is symmetric
in i - j (through |.|) and would leave a bidirectional model blind to direction. Causal mode
uses the formula as written (keys with i < j are masked there anyway).

Memory: the bias costs B * T * S * W floats of activations per layer (f runs on every
query-key pair; IDs are per example, so nothing is shared across the batch).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            single_level)

EPS = 1e-6  # added to psi(max(L, i)), as in the reference implementation


def torch_linear(fan_in: int, fan_out: int, rngs: nnx.Rngs) -> tuple[nnx.Param, nnx.Param]:
  """(kernel [fan_in, fan_out], bias [fan_out]) float32, both U(+-1/sqrt(fan_in)) (PyTorch's
  nn.Linear default); replicated (logical names None)."""
  bound = 1.0 / math.sqrt(fan_in)

  def uniform(shape):
    return jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound)

  return (nnx.Param(uniform((fan_in, fan_out)), logical=(None, None)),
          nnx.Param(uniform((fan_out,)), logical=(None,)))


def fire_inputs(query_ids_BxT: jax.Array, key_ids_BxS: jax.Array, c: jax.Array,
                threshold: jax.Array, signed: bool) -> jax.Array:
  """float32 [B, T, S]: psi(i - j) / (psi(max(L, i)) + EPS), psi(x) = log(|c x| + 1).

  i, j: int32 query and key IDs; c, threshold (L): float32 scalars; signed: multiply by
  sign(i - j) (encoder mode).
  """
  i_BxT = query_ids_BxT.astype(jnp.float32)
  dist_BxTxS = i_BxT[:, :, None] - key_ids_BxS.astype(jnp.float32)[:, None, :]

  def psi(x):
    return jnp.log(jnp.abs(c * x) + 1.0)

  normalizer_BxT = psi(jnp.maximum(threshold, i_BxT)) + EPS
  u_BxTxS = psi(dist_BxTxS) / normalizer_BxT[:, :, None]
  return jnp.sign(dist_BxTxS) * u_BxTxS if signed else u_BxTxS


class FireLayer(LayerEncoding):
  """One layer's FIRE: c, the threshold multiplier and f."""

  def __init__(self, name: str, dims: Dims, mlp_width: int, init_c: float,
               init_threshold: float, rngs: nnx.Rngs):
    self.name = name
    self.signed = not dims.causal
    self.init_threshold = init_threshold
    self.c = nnx.Param(jnp.asarray(init_c, jnp.float32), logical=())
    self.threshold_multiplier = nnx.Param(jnp.asarray(1.0, jnp.float32), logical=())
    self.hidden_kernel, self.hidden_bias = torch_linear(1, mlp_width, rngs)
    self.out_kernel, self.out_bias = torch_linear(mlp_width, dims.heads, rngs)

  def threshold(self) -> jax.Array:
    """float32 []: L = |m * init_threshold|."""
    return jnp.abs(self.threshold_multiplier[...] * self.init_threshold)

  def mlp(self, u: jax.Array) -> jax.Array:
    """f: float32 [...] -> [..., H]."""
    hidden = jax.nn.relu(u[..., None] * self.hidden_kernel[...][0] + self.hidden_bias[...])
    return hidden @ self.out_kernel[...] + self.out_bias[...]

  def bias(self, query_positions, key_positions, state):
    """float32 [B, H, T, S]: b_h(i, j) for query IDs `[B, T]` and key IDs `[B, S]`."""
    del state
    u_BxTxS = fire_inputs(single_level(query_positions, self.name),
                          single_level(key_positions, self.name), self.c[...],
                          self.threshold(), self.signed)
    return self.mlp(u_BxTxS).transpose(0, 3, 1, 2)


@ENCODINGS.register("fire")
class Fire(Encoding):
  """Options: mlp_width (32), init_c (0.1), init_threshold (512.0: L = |m * 512|, m init 1)."""

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs, mlp_width: int = 32, init_c: float = 0.1,
               init_threshold: float = 512.0):
    del rngs
    super().__init__(dims)
    if mlp_width < 1:
      raise ValueError(f"fire mlp_width must be >= 1, got {mlp_width}")
    if init_threshold <= 0:
      raise ValueError(f"fire init_threshold must be > 0, got {init_threshold}")
    self.mlp_width = mlp_width
    self.init_c = init_c
    self.init_threshold = init_threshold

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    return FireLayer(self.name, self.dims, self.mlp_width, self.init_c, self.init_threshold,
                     rngs)
