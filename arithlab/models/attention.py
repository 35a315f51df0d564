"""Multi-head attention with encoding hooks, grouped KV heads, a KV cache and log-n temperature.

One code path serves the uncached forward pass and cached decoding: the keys a query may
attend are the `S` entries of a `Keys` context (the T new tokens themselves, or the whole
cache after writing the T new tokens into it at `index`). Causality compares slots (cache
indices), not position IDs, so any position-ID rule works.
"""

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from arithlab.models.encodings.base import HeadLayout, LayerEncoding, State, dense
from arithlab.models.sharding import Rules, constrain

MASKED = -1e30  # logit of a key a query may not attend (finite: fully masked rows stay finite)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Keys:
  """The keys every layer attends in one call.

  positions: int32 [B, S] or [B, S, L], the keys' position IDs.
  allowed_BxTxS: bool, query t may attend key s.
  index: None (uncached: the keys are the new tokens) or the int32 cache slot where the new
    tokens are written.
  """

  positions: jax.Array
  allowed_BxTxS: jax.Array
  index: jax.Array | None


def allowed_keys(key_mask_BxS: jax.Array, index: jax.Array | int, num_queries: int,
                 causal: bool) -> jax.Array:
  """bool [B, T, S]: key s is real and (if causal) its slot is <= query t's slot index + t."""
  allowed = jnp.broadcast_to(key_mask_BxS[:, None, :],
                             (key_mask_BxS.shape[0], num_queries, key_mask_BxS.shape[1]))
  if not causal:
    return allowed
  query_slot_T = index + jnp.arange(num_queries)
  key_slot_S = jnp.arange(key_mask_BxS.shape[1])
  return allowed & (key_slot_S[None, :] <= query_slot_T[:, None])[None]


def log_n_scale(allowed_BxTxS: jax.Array, base: float) -> jax.Array:
  """float32 [B, 1, T, 1]: log(n) / log(base), n = keys query t attends (at least 1).

  The length-dependent temperature: softmax(scale * logits) with scale = log_base(n)
  (log-n scaling of Chiang & Cholak 2022 and Scalable-Softmax with base e; with base = the
  training length it is 1 there and grows beyond it). Awasthi & Gupta 2023 add "a small
  number of length dependent parameters"; their exact form is unverified, this is the
  common one. n counts the keys each query actually attends (causal: its prefix).
  """
  n_BxT = jnp.maximum(allowed_BxTxS.sum(axis=-1), 1).astype(jnp.float32)
  return (jnp.log(n_BxT) / math.log(base))[:, None, :, None]


def write_cache(cache: dict[str, jax.Array], new: dict[str, jax.Array],
                index: jax.Array) -> dict[str, jax.Array]:
  """Writes each new [B, T, ...] array into its [B, S, ...] cache entry at slot `index`."""
  return {name: jax.lax.dynamic_update_slice_in_dim(cache[name], new[name].astype(
      cache[name].dtype), index, axis=1) for name in cache}


class Attention(nnx.Module):
  """Self-attention whose positional behaviour comes from a `LayerEncoding`."""

  def __init__(self, d_model: int, head_dim: int, layout: HeadLayout,
               encoding: LayerEncoding, *, use_bias: bool, dropout: float,
               temperature_base: float | None, dtype: Any, rules: Rules, rngs: nnx.Rngs):
    if layout.out % layout.kv:
      raise ValueError(f"attention out heads {layout.out} must be a multiple of kv heads "
                       f"{layout.kv}")
    self.layout = layout
    self.head_dim = head_dim
    self.encoding = encoding
    self.temperature_base = temperature_base
    self.rules = rules

    def proj(spec: str, shape: tuple[int, ...], logical: tuple[str, ...], bias_dims: int):
      return dense(spec, shape, logical, bias_dims=bias_dims, use_bias=use_bias, dtype=dtype,
                   rngs=rngs)

    self.query = proj("BTD,DHK->BTHK", (d_model, layout.query, head_dim),
                      ("embed", "heads", "kv"), 2)
    self.key = proj("BTD,DHK->BTHK", (d_model, layout.kv, head_dim), ("embed", "heads", "kv"), 2)
    self.value = proj("BTD,DHK->BTHK", (d_model, layout.kv, head_dim),
                      ("embed", "heads", "kv"), 2)
    self.out = proj("BTHK,HKD->BTD", (layout.out, head_dim, d_model), ("heads", "kv", "embed"), 1)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def init_cache(self, batch: int, max_len: int, key_data: dict[str, jax.ShapeDtypeStruct],
                 dtype: Any) -> dict[str, jax.Array]:
    """Zeros: k, v [B, S, G, K] in the compute dtype, plus the encoding's per-key data."""
    shape = (batch, max_len, self.layout.kv, self.head_dim)
    cache = {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
    cache.update({name: jnp.zeros((batch, max_len, *s.shape[2:]), s.dtype)
                  for name, s in key_data.items()})
    return cache

  def __call__(self, x_BxTxD: jax.Array, positions: jax.Array, state: State, keys: Keys,
               cache: dict[str, jax.Array] | None, *, deterministic: bool
               ) -> tuple[jax.Array, State, dict[str, jax.Array] | None]:
    """Attends the new tokens x_BxTxD to `keys`.

    positions: int32 [B, T(, L)] of the new tokens; state: the encoding state of the new
    tokens; cache: this layer's cache (None when uncached), returned updated.
    Returns (y_BxTxD in the compute dtype, the updated state, the cache).
    """
    q_BxTxQxK = constrain(self.query(x_BxTxD), ("batch", "length", "heads", "kv"), self.rules)
    k_BxTxGxK = constrain(self.key(x_BxTxD), ("batch", "length", "heads", "kv"), self.rules)
    v_BxTxGxK = constrain(self.value(x_BxTxD), ("batch", "length", "heads", "kv"), self.rules)
    q_BxTxHxK, k_BxTxGxK = self.encoding.queries_keys(q_BxTxQxK, k_BxTxGxK, positions, state)
    new = {"k": k_BxTxGxK, "v": v_BxTxGxK, **self.encoding.key_data(positions, state)}
    if cache is not None:
      cache = write_cache(cache, new, keys.index)
      new = cache
    k_BxSxGxK, v_BxSxGxK = new["k"], new["v"]
    key_data = {name: a for name, a in new.items() if name not in ("k", "v")}

    batch, length, heads, _ = q_BxTxHxK.shape
    groups = self.layout.kv
    q_BxTxGxRxK = q_BxTxHxK.reshape(batch, length, groups, heads // groups, self.head_dim)
    logits = jnp.einsum("BTGRK,BSGK->BGRTS", q_BxTxGxRxK, k_BxSxGxK,
                        preferred_element_type=jnp.float32)
    logits_BxHxTxS = logits.reshape(batch, heads, length, -1)
    logits_BxHxTxS = logits_BxHxTxS / math.sqrt(self.head_dim)
    bias = self.encoding.bias(positions, keys.positions, state)
    if bias is not None:
      logits_BxHxTxS = logits_BxHxTxS + bias
    if self.temperature_base is not None:
      logits_BxHxTxS = logits_BxHxTxS * log_n_scale(keys.allowed_BxTxS, self.temperature_base)
    logits_BxHxTxS = jnp.where(keys.allowed_BxTxS[:, None], logits_BxHxTxS, MASKED)
    probs_BxHxTxS = jax.nn.softmax(logits_BxHxTxS, axis=-1)
    state = self.encoding.after_attention(state, probs_BxHxTxS, key_data)

    probs = self.dropout(probs_BxHxTxS, deterministic=deterministic).astype(v_BxSxGxK.dtype)
    probs_BxGxRxTxS = probs.reshape(batch, groups, heads // groups, length, -1)
    out_BxTxGxRxK = jnp.einsum("BGRTS,BSGK->BTGRK", probs_BxGxRxTxS, v_BxSxGxK)
    y_BxTxD = self.out(out_BxTxGxRxK.reshape(batch, length, heads, self.head_dim))
    return y_BxTxD, state, cache
