"""Abacus embeddings (McLeish et al. 2024): a learned table over digit-significance IDs.

The data pipeline assigns the IDs (0 for non-digits, j for the j-th digit of each run of
digits, plus a random offset k in training); the model adds table[id] to the token
embedding. The longest number it can place is max_id digits; a model trained on numbers of
at most n digits with offsets up to k_max has seen IDs up to k_max + n, the length it can
reach.
"""

from absl import logging
import jax
from flax import nnx

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, add_rows,
                                            single_level, table)


@ENCODINGS.register("abacus")
class Abacus(Encoding):
  """x += table[ids]; ids in [0, max_id] (option max_id, default 1024), 0 = not a digit."""

  randomizable = False

  def __init__(self, dims: Dims, *, rngs: nnx.Rngs, max_id: int = 1024):
    super().__init__(dims)
    self.table = table(max_id + 1, dims, rngs)
    self.limit = max_id + 1

  def check_length(self, max_position_id: int, seq_len: int) -> None:
    super().check_length(max_position_id, seq_len)
    logging.info("abacus: ids up to %d requested, table holds ids <= %d; the reachable number "
                 "length is k_max + the longest training number", max_position_id,
                 self.limit - 1)

  def embed(self, x_BxTxD: jax.Array, positions: jax.Array) -> jax.Array:
    """x_BxTxD: compute dtype; positions: int32 [B, T] Abacus IDs."""
    ids_BxT = single_level(positions, self.name)
    return add_rows(x_BxTxD, self.table, ids_BxT)
