"""Learned absolute position embeddings: a `[max_position, D]` table added to the tokens."""

import jax
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, add_rows,
                                            single_level, table)


@ENCODINGS.register("learned")
class Learned(Encoding):
  """x += table[positions]; the table has `dims.max_position` rows (the limit)."""

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs):
    super().__init__(dims)
    self.table = table(dims.max_position, dims, rngs)
    self.limit = dims.max_position

  def embed(self, x_BxTxD: jax.Array, positions: jax.Array) -> jax.Array:
    """x_BxTxD: compute dtype; positions: int32 [B, T] in [0, limit)."""
    ids_BxT = single_level(positions, self.name)
    return add_rows(x_BxTxD, self.table, ids_BxT)
