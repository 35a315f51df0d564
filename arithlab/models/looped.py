"""Looped transformer (McLeish et al. 2024): a block of layers applied n times with input injection.

A plain transformer is the special case of one recurrence without injection, so the model
runs its layers through `apply_layers` either way. With injection, recurrence r feeds the
block h_r + e (h_0 = 0, e the embedded input): recurrence 0 sees e, as a plain model does.
In cached decoding every (recurrence, layer) pair has its own KV cache, in that order.
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.attention import Keys
from arithlab.models.encodings.base import State


def apply_layers(layers: Sequence[Callable], e_BxTxD: jax.Array, positions: jax.Array,
                 state: State, keys: Keys, caches: list | None, *, recurrences: int,
                 inject: bool, deterministic: bool) -> tuple[jax.Array, list | None]:
  """Runs `layers` (Blocks, or callables with their signature) in order `recurrences` times.

  e_BxTxD: the embedded input (compute dtype); positions: int32 [B, T(, L)]; state: the
  encoding state entering the first layer; caches: None (uncached) or the
  len(layers) * recurrences per-layer caches. Returns (h_BxTxD, the updated caches).
  """
  h_BxTxD = jnp.zeros_like(e_BxTxD) if inject else e_BxTxD
  new_caches = None if caches is None else []
  for r in range(recurrences):
    if inject:
      h_BxTxD = h_BxTxD + e_BxTxD
    for i, layer in enumerate(layers):
      cache = None if caches is None else caches[r * len(layers) + i]
      h_BxTxD, state, cache = layer(h_BxTxD, positions, state, keys, cache,
                                    deterministic=deterministic)
      if caches is not None:
        new_caches.append(cache)
  return h_BxTxD, new_caches
