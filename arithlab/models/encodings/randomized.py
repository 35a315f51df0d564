"""Randomized positional encodings (Ruoss et al. 2023) and the name -> encoding builder.

`randomized:<name>` is the base encoding built to accept position IDs up to L
(`cfg.model.randomized_max_len`, 2048 in the paper). The model samples nothing: the data
pipeline emits the sorted random subsets of {0, ..., L-1} as position IDs. The wrapper only
raises the limit to L and checks that a sequence of `seq_len` distinct IDs fits in [0, L).
"""

import dataclasses
from typing import Any

from flax import nnx

from arithlab.models.encodings.base import ENCODINGS, Dims, Encoding

PREFIX = "randomized:"


def encoding_class(name: str) -> type[Encoding]:
  """The class of encoding `name` (`randomized:` stripped); ValueError listing valid names."""
  base = name.removeprefix(PREFIX)
  cls = ENCODINGS.get(base)
  if name.startswith(PREFIX) and not cls.randomizable:
    valid = [n for n in ENCODINGS.names() if ENCODINGS.get(n).randomizable]
    raise ValueError(f"encoding {base!r} takes no integer positions to randomize; "
                     f"randomized:<name> works for: {', '.join(valid)}")
  return cls


def build_encoding(name: str, dims: Dims, options: dict[str, Any], randomized_max_len: int,
                   rngs: nnx.Rngs) -> Encoding:
  """Builds encoding `name` (e.g. "rope", "randomized:alibi") with its options (checked by
  `config.validate`)."""
  cls = encoding_class(name)
  randomized = name.startswith(PREFIX)
  if randomized:
    dims = dataclasses.replace(dims, max_position=randomized_max_len)
  encoding = cls(dims, rngs=rngs, **options)
  encoding.name = name
  if randomized:
    encoding.limit = randomized_max_len
    encoding.distinct_positions = True
  return encoding
