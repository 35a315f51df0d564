"""Rotary position embedding (Su et al. 2021), interleaved pairs, with the length-extrapolation
variants of issue 9: frequency scaling, partial rotation / p-RoPE and NoPE/RoPE layer patterns.

Pairs (x_2n, x_2n+1) of each head's first 2F features are rotated by the angle p * theta'_n for
position ID p; the remaining features pass through. theta'_n is the n-th frequency of a
d-feature spectrum, theta_n = base^(-2n/d) (docs/encodings.md#rope), changed by the `scaling` option
(rope_scaling.py: "none", "linear:<s>", "ntk:<s>", "yarn:<s>:<L>[:<alpha>:<beta>]", with the
formulas). After the rotation q and k are multiplied by `rope_scaling.qk_scale` (YaRN's
attention temperature sqrt(1/t); 1 for the others), all features of each head.

Which features rotate (options `fraction` f and `partial`), with K = head_dim and
R = floor(f K) rounded down to even:
  "neox"    (GPT-NeoX / HF `partial_rotary_factor`): the first R features rotate with the full
            spectrum of d = R features, n < R/2.
  "p_rope"  (p-RoPE, Barbero et al. 2024, "Round and Round We Go! What makes Rotary Positional
            Encodings useful?"): the spectrum of the whole head, d = K, keeps its R/2 highest
            frequencies n < R/2 on the first R features; the lowest frequencies are dropped
            (theta = 0: those features are not rotated). f = 1: RoPE.
`layer_pattern` (e.g. "rope,nope") assigns "rope" or "nope" to the layers in order, repeated;
model.layers must be a multiple of its length. A "nope" layer leaves q and k unchanged.

q and k are rotated with their own position IDs, so the score depends on the IDs only through
their difference (every variant: each is a set of per-pair frequencies and a constant factor).
Multi-level `[B, T, L]` IDs are refused (ValueError): pick the level in the data pipeline.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, LayerEncoding,
                                            single_level)
from arithlab.models.encodings.rope_scaling import (NO_SCALING, RopeScaling,
                                                    inverse_frequencies, parse_scaling, qk_scale)

PARTIALS = ("neox", "p_rope")
LAYER_KINDS = ("rope", "nope")


def rotary_dims(head_dim: int, fraction: float) -> int:
  """The even number of features per head that rotate: floor(fraction * K) rounded down to even."""
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"rope fraction must be in (0, 1], got {fraction}")
  dims = int(fraction * head_dim) // 2 * 2
  if dims == 0:
    raise ValueError(f"rope fraction {fraction} rotates no feature of head_dim {head_dim}")
  return dims


def rope_angles(ids_BxT: jax.Array, dims: int, base: float,
                scaling: RopeScaling = NO_SCALING) -> jax.Array:
  """float32 [B, T, dims/2]: angle ids * theta'_n, the scaled frequencies of a dims-feature
  spectrum (rope_scaling.inverse_frequencies). ids_BxT: int or float [B, T]."""
  theta_F = np.asarray(inverse_frequencies(dims, base, scaling), np.float32)
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


@dataclasses.dataclass(frozen=True)
class Rotation:
  """A static description of one RoPE: the first `pairs` frequencies of a `dims`-feature
  spectrum with `base` and `scaling` turn the first 2 * pairs features of each head."""

  dims: int
  pairs: int
  base: float
  scaling: RopeScaling

  def angles(self, ids_BxT: jax.Array) -> jax.Array:
    """float32 [B, T, pairs]."""
    return rope_angles(ids_BxT, self.dims, self.base, self.scaling)[..., :self.pairs]

  @property
  def qk_scale(self) -> float:
    return qk_scale(self.scaling)


def make_rotation(head_dim: int, base: float, scaling: str, fraction: float = 1.0,
                  partial: str = "neox") -> Rotation:
  """The Rotation of the RoPE options (module docstring); ValueError names a bad option."""
  if partial not in PARTIALS:
    raise ValueError(f"rope partial {partial!r} unknown; choose one of: {', '.join(PARTIALS)}")
  rotated = rotary_dims(head_dim, fraction)
  spectrum = rotated if partial == "neox" else head_dim
  rotation = Rotation(spectrum, rotated // 2, base, parse_scaling(scaling))
  inverse_frequencies(rotation.dims, base, rotation.scaling)  # raises for an impossible scaling
  return rotation


def layer_kinds(pattern: str, layers: int) -> tuple[str, ...]:
  """The kind ("rope" | "nope") of each of `layers` layers: `pattern` ("rope,nope") repeated.

  Raises:
    ValueError: naming the pattern, for an unknown kind or when layers is not a multiple of
      its length.
  """
  kinds = tuple(kind.strip() for kind in pattern.split(","))
  unknown = [kind for kind in kinds if kind not in LAYER_KINDS]
  if unknown:
    raise ValueError(f"rope layer_pattern {pattern!r} has unknown kind(s) {unknown}; use a "
                     f"comma-separated list of: {', '.join(LAYER_KINDS)}")
  if layers % len(kinds):
    raise ValueError(f"rope layer_pattern {pattern!r} has {len(kinds)} entries: model.layers="
                     f"{layers} must be a multiple of {len(kinds)}")
  return kinds * (layers // len(kinds))


class RopeLayer(LayerEncoding):
  """Rotates q and k of the new tokens by their position IDs, then scales them by qk_scale."""

  def __init__(self, name: str, rotation: Rotation):
    self.name = name
    self.rotation = rotation

  def rotate(self, x_BxTxHxK: jax.Array, angles_BxTxF: jax.Array) -> jax.Array:
    """apply_rotary(x, angles) * qk_scale; same shape and dtype."""
    return apply_rotary(x_BxTxHxK, angles_BxTxF) * self.rotation.qk_scale

  def queries_keys(self, q_BxTxQxK, k_BxTxGxK, positions, state):
    del state
    angles = self.rotation.angles(single_level(positions, self.name))
    return self.rotate(q_BxTxQxK, angles), self.rotate(k_BxTxGxK, angles)


@ENCODINGS.register("rope")
class Rope(Encoding):
  """Options: base (10000), fraction of each head's features that rotate (1.0), partial
  ("neox" | "p_rope": which frequencies the fraction keeps), scaling ("none", "linear:4",
  "ntk:4", "yarn:4:64", ...), layer_pattern ("rope"; e.g. "rope,nope")."""

  def __init__(self, dims: Dims, *, rngs, base: float = 10000.0, fraction: float = 1.0,
               partial: str = "neox", scaling: str = "none", layer_pattern: str = "rope"):
    del rngs
    super().__init__(dims)
    self.base = base
    self.rotation = make_rotation(dims.head_dim, base, scaling, fraction, partial)
    self.rotary_dims = 2 * self.rotation.pairs
    self.layer_kinds = layer_kinds(layer_pattern, dims.layers)
    self.layers_built = 0

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    """The next layer's part (layers are built in order): RopeLayer, or NoPE for "nope"."""
    del rngs
    kind = self.layer_kinds[self.layers_built % len(self.layer_kinds)]
    self.layers_built += 1
    return RopeLayer(self.name, self.rotation) if kind == "rope" else LayerEncoding()
