"""Position coupling (Cho et al. 2024): learned absolute tables over coupled position IDs.

The data pipeline gives digits of equal significance the same ID (and, for multi-operand
tasks, more levels such as the operand index). Level l has its own `[max_position, D]`
table; the embedding adds the sum over levels of table_l[ids[..., l]].
"""

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import ENCODINGS, Dims, Encoding, normal_init


@ENCODINGS.register("coupling")
class Coupling(Encoding):
  """One table per level (dims.levels, or 1 for [B, T] IDs), each with max_position rows."""

  randomizable = False

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs):
    super().__init__(dims)
    levels = max(dims.levels, 1)
    self.tables = nnx.Param(
        normal_init()(rngs.params(), (levels, dims.max_position, dims.d_model), jnp.float32),
        logical=(None, "length", "embed"))
    self.limit = dims.max_position

  def embed(self, x_BxTxD: jax.Array, positions: jax.Array) -> jax.Array:
    """positions: int32 [B, T] or [B, T, L] with L = dims.levels."""
    ids_BxTxL = positions if positions.ndim == 3 else positions[..., None]
    tables_LxPxD = self.tables[...]
    levels = jnp.arange(tables_LxPxD.shape[0])
    pos_BxTxD = tables_LxPxD[levels, ids_BxTxL].sum(axis=-2)
    return x_BxTxD + pos_BxTxD.astype(x_BxTxD.dtype)
