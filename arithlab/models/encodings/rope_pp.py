"""RoPE++ (Liu et al. 2025, code OpenMOSS/rope_pp): RoPE's real attention plus imaginary heads.

Write a head's features as complex pairs z_n = x_2n + i x_2n+1 (rope.py's interleaved
pairs; the reference uses the half-split `rotate_half` layout, which differs only by a fixed
permutation of each head's features, so the scores are the same functions of the
projections) and let w = sum_n z_q,n conj(z_k,n) e^{i theta_n (t - s)} for a query at
position ID t and a key at ID s. RoPE's score is the real part, Re w = (R_t q).(R_s k).
RoPE++ adds, for every query head, an imaginary head whose score is Im w, computed by
rotating q by an extra -pi/2: (R_t R_{-pi/2} q).(R_s k), i.e. the reference's
`q * sin - rotate_half(q) * cos`, with k rotated as usual. In the paper's notation
(q~_n = x_2n - i x_2n+1, the sum taken with e^{i theta_n (s - t)}) these are
(Re, -Im) of sum_n q~_t,n conj(k~_s,n) e^{i theta_n (s - t)}.

Imaginary heads are separate softmax heads interleaved with their real partners
(out head 2h real, 2h + 1 imaginary, as the reference's stack on the head axis) and share
their keys and values. Modes (option `mode`):
  "ec" (the reference's 'imag2'): the projections of plain RoPE (H query heads, H kv heads),
      2H attention heads; the output projection reads 2H heads.
  "eh" ('imag1'): H/2 query and H/2 kv heads (half the KV cache), H attention heads, the
      output projection of plain RoPE.
Every feature of a head rotates (the reference has no partial rotation). Option `scaling`
takes rope.py's frequency scalings ("linear:4", "ntk:4", "yarn:4:64", ...; rope_scaling.py):
the scaled frequencies replace theta_n and YaRN's qk_scale multiplies the real and imaginary
queries and the keys. Scores depend on t - s only: translation invariant in the position IDs.
"""

import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, HeadLayout,
                                            LayerEncoding, single_level)
from arithlab.models.encodings.rope import RopeLayer, make_rotation, rotate_pairs_90

MODES = ("ec", "eh")


class RopePPLayer(RopeLayer):
  """Rotates k as RoPE does; turns every query head into a (real, imaginary) pair of heads.
  Built as RopeLayer(name, rotation) with a rotation of every feature."""

  def queries_keys(self, q_BxTxQxK, k_BxTxGxK, positions, state):
    """Returns (q [B, T, 2Q, K] with heads (real 0, imag 0, real 1, ...), rotated k)."""
    del state
    angles = self.rotation.angles(single_level(positions, self.name))
    real = self.rotate(q_BxTxQxK, angles)
    imag = self.rotate(-rotate_pairs_90(q_BxTxQxK), angles)  # R_t R_{-pi/2} q
    batch, length, heads, head_dim = q_BxTxQxK.shape
    q_BxTxHxK = jnp.stack([real, imag], axis=3).reshape(batch, length, 2 * heads, head_dim)
    return q_BxTxHxK, self.rotate(k_BxTxGxK, angles)


@ENCODINGS.register("rope_pp")
class RopePP(Encoding):
  """Options: mode ("ec" | "eh", default "ec"), base (10000), scaling ("none"; see rope.py)."""

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs, mode: str = "ec", base: float = 10000.0,
               scaling: str = "none"):
    del rngs
    super().__init__(dims)
    if mode not in MODES:
      raise ValueError(f"rope_pp mode {mode!r} unknown; choose one of: {', '.join(MODES)}")
    if mode == "eh" and dims.heads % 2:
      raise ValueError(f"rope_pp mode 'eh' halves the heads: model.heads must be even, got "
                       f"{dims.heads}")
    if dims.head_dim % 2:
      raise ValueError(f"rope_pp rotates pairs of features: head_dim must be even, got "
                       f"{dims.head_dim}")
    self.mode = mode
    self.rotation = make_rotation(dims.head_dim, base, scaling)

  def head_layout(self) -> HeadLayout:
    heads = self.dims.heads
    if self.mode == "ec":
      return HeadLayout(query=heads, kv=heads, out=2 * heads)
    return HeadLayout(query=heads // 2, kv=heads // 2, out=heads)

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    del rngs
    return RopePPLayer(self.name, self.rotation)
