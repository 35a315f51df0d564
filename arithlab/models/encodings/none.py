"""NoPE: no positional encoding; order comes from the causal mask alone."""

from arithlab.models.encodings.base import ENCODINGS, Dims, Encoding


@ENCODINGS.register("none")
class NoPE(Encoding):
  """Every hook is the identity (the base class defaults)."""

  randomizable = False

  def __init__(self, dims: Dims, *, rngs):
    del rngs
    super().__init__(dims)
