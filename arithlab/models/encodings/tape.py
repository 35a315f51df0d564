"""TAPE (Zhu et al. 2025, code VITA-Group/TAPE): position features that layers update.

Every token carries per-head features (C, S), float32 [B, T, H, F] with F = K/2 (one per
rotary frequency), initialised from RoPE: C = cos(theta_n p), S = sin(theta_n p),
theta_n = base^(-2n/K), p the token's position ID. TAPE's random training offset k
(p = i + k) is a position-ID rule of the data pipeline, not part of the model: the IDs that
reach the model already carry it when the configured rule adds one.

In every layer:
  attention: q~ = q * C + rot(q) * S and the same for k, with rot rope.py's 90-degree
      rotation of each interleaved pair (x_2n, x_2n+1) and C, S repeated for both members of
      a pair: with the initial features this is exactly RoPE. A = softmax(q~ k~^T / sqrt(K) +
      mask) attends the values AND averages the keys' features with the same weights,
      C^_i = sum_j A_ij C_j per head, which are mixed across heads and added:
      C <- C + W_E C^, W_E [H, H] (same for S). The features of every key are cached
      (`key_data`) so cached decoding equals the uncached pass.
  after the MLP: C <- C + W_down[SiLU(W_x y) * (W_up C)] (same for S, same weights), with
      W_up: H -> P and W_down: P -> H acting on the head axis, W_x: D -> P a projection of
      the token's hidden state y (P = `position_ratio` * H, 4H as in the reference's
      `position_size = 4 * num_attention_heads`; W_x has the reference's `x_proj` shape
      [hidden_size, position_size], with no bias).
W_E and W_up start at zero (the reference's "special zero initialization"), so an untrained
TAPE model computes RoPE; W_x and W_down start N(0, 0.02). Option `scaling` takes rope.py's
frequency scalings ("linear:4", "ntk:4", "yarn:4:64", ...; rope_scaling.py): the initial
features use the scaled frequencies, and every layer multiplies q~ and k~ by YaRN's qk_scale.

No map mixes the feature axis F, and C and S get the same linear maps, so given the
attention weights the update commutes with any linear map applied to the (C, S, F)
coordinates of all tokens alike (orthogonal maps, permutations of F). The attention weights
themselves are unchanged by (a) a permutation of the F frequencies applied to C, S and to
the query/key feature pairs, and (b) a rotation of each (C_n, S_n) plane by a
token-independent angle (a shift of all position IDs is one such rotation); so a whole
layer commutes with both.

Deviations from the published code, all deliberate: (1) the rotated q, k are used (the
published arithmetic code, zhuconv/arithmetic, calls `apply_rotary_emb` and discards its
result, so its position features never reach the scores); (2) features are averaged over
keys, C^_i = sum_j A_ij C_j (that code's einsum 'qbnh,bnqk->kbnh' sums over queries, i.e.
uses A^T and leaks later tokens into earlier ones); (3) W_E mixes heads (the language-model
code's einsum 'bqnd,qe->bqnd' only rescales each head by a row sum of W_E). y is what the
`after_mlp` hook receives: the MLP's output, as both reference codes feed it
(`hidden_states = mlp(hidden_states); position_states = pe(hidden_states, position_states)`).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            normal_init, single_level)
from arithlab.models.encodings.rope import make_rotation, rotate_pairs_90

FEATURES = ("tape_cos", "tape_sin")  # the state's (and each layer's cached key data) keys


def rotate_with_features(x_BxTxHxK: jax.Array, cos_BxTxHxF: jax.Array,
                         sin_BxTxHxF: jax.Array) -> jax.Array:
  """x * C + rot(x) * S, each feature pair with its (C, S); same shape and dtype as x."""
  cos = jnp.repeat(cos_BxTxHxF, 2, axis=-1)
  sin = jnp.repeat(sin_BxTxHxF, 2, axis=-1)
  x = x_BxTxHxK.astype(jnp.float32)
  return (x * cos + rotate_pairs_90(x) * sin).astype(x_BxTxHxK.dtype)


class TapeLayer(LayerEncoding):
  """One layer's feature maps: W_E [H, H], W_x [D, P], W_up [H, P], W_down [P, H]; q~ and k~
  are multiplied by qk_scale."""

  def __init__(self, dims: Dims, position_size: int, qk_scale: float, rngs: nnx.Rngs):
    heads = dims.heads
    self.qk_scale = qk_scale

    def param(init, shape, logical):
      return nnx.Param(init(rngs.params(), shape, jnp.float32), logical=logical)

    zeros = jax.nn.initializers.zeros
    self.mix = param(zeros, (heads, heads), (None, None))
    self.x_proj = param(normal_init(), (dims.d_model, position_size), ("embed", None))
    self.up = param(zeros, (heads, position_size), (None, None))
    self.down = param(normal_init(), (position_size, heads), (None, None))

  def queries_keys(self, q_BxTxQxK, k_BxTxGxK, positions, state):
    del positions
    cos, sin = (state[name] for name in FEATURES)
    return (rotate_with_features(q_BxTxQxK, cos, sin) * self.qk_scale,
            rotate_with_features(k_BxTxGxK, cos, sin) * self.qk_scale)

  def key_data(self, positions, state):
    """This layer's input features of the new tokens: {"tape_cos", "tape_sin": [B, T, H, F]}."""
    del positions
    return dict(state)

  def after_attention(self, state, probs_BxHxTxS, key_data):
    """C += W_E (sum_j A_ij C_j) per head (same for S); key_data: the features of all S keys."""

    def update(f_BxTxHxF, keys_BxSxHxF):
      mean_BxTxHxF = jnp.einsum("BHTS,BSHF->BTHF", probs_BxHxTxS, keys_BxSxHxF)
      return f_BxTxHxF + jnp.einsum("BTGF,HG->BTHF", mean_BxTxHxF, self.mix[...])

    return {name: update(state[name], key_data[name]) for name in FEATURES}

  def after_mlp(self, state, x_BxTxD):
    """C += W_down[SiLU(W_x y) * (W_up C)] on the head axis (same for S); y = x_BxTxD."""
    gate_BxTxP = jax.nn.silu(jnp.einsum("BTD,DP->BTP", x_BxTxD.astype(jnp.float32),
                                        self.x_proj[...]))

    def update(f_BxTxHxF):
      up_BxTxPxF = jnp.einsum("BTHF,HP->BTPF", f_BxTxHxF, self.up[...])
      return f_BxTxHxF + jnp.einsum("BTPF,PH->BTHF", gate_BxTxP[..., None] * up_BxTxPxF,
                                    self.down[...])

    return {name: update(state[name]) for name in FEATURES}


@ENCODINGS.register("tape")
class Tape(Encoding):
  """Options: base (10000, RoPE's), position_ratio (4: P = 4H), scaling ("none"; rope.py's)."""

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs, base: float = 10000.0,
               position_ratio: int = 4, scaling: str = "none"):
    del rngs
    super().__init__(dims)
    if dims.head_dim % 2:
      raise ValueError(f"tape rotates pairs of features: head_dim must be even, got "
                       f"{dims.head_dim}")
    if position_ratio < 1:
      raise ValueError(f"tape position_ratio must be >= 1, got {position_ratio}")
    self.rotation = make_rotation(dims.head_dim, base, scaling)
    self.position_size = position_ratio * dims.heads

  def init_state(self, positions: jax.Array) -> dict[str, jax.Array]:
    """{"tape_cos", "tape_sin": float32 [B, T, H, K/2]}: cos, sin of theta'_n * positions."""
    angles_BxTxF = self.rotation.angles(single_level(positions, self.name))
    shape = (*angles_BxTxF.shape[:2], self.dims.heads, angles_BxTxF.shape[-1])
    return {name: jnp.broadcast_to(fn(angles_BxTxF)[:, :, None, :], shape)
            for name, fn in zip(FEATURES, (jnp.cos, jnp.sin))}

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    return TapeLayer(self.dims, self.position_size, self.rotation.qk_scale, rngs)
