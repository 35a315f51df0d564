"""The transformer: token embedding, encoding, pre-LN blocks, final norm, logits.

Decoder-only (causal) or encoder-only (`causal=False`). Positional behaviour lives entirely
in the encoding chosen by `cfg.encoding` (see encodings/base.py for its hooks).
"""

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from arithlab.models import config as config_lib
from arithlab.models.attention import Attention, Keys, allowed_keys
from arithlab.models.encodings import Dims, Encoding, build_encoding
from arithlab.models.encodings.base import State, dense, normal_init
from arithlab.models.looped import apply_layers
from arithlab.models.sharding import Rules, constrain, freeze_rules

# model.remat -> what a rematerialized block keeps for the backward pass (jax.checkpoint policy).
REMAT_POLICIES = {"full": jax.checkpoint_policies.nothing_saveable,
                  "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


def make_norm(cfg: ml_collections.ConfigDict, dtype: Any, rngs: nnx.Rngs) -> nnx.Module:
  """LayerNorm or RMSNorm over d_model with `embed`-named parameters."""
  meta = {"logical": ("embed",)}
  if cfg.norm == "rmsnorm":
    return nnx.RMSNorm(cfg.d_model, dtype=dtype, scale_metadata=meta, rngs=rngs)
  return nnx.LayerNorm(cfg.d_model, use_bias=cfg.use_bias, dtype=dtype, scale_metadata=meta,
                       bias_metadata=meta, rngs=rngs)


class Mlp(nnx.Module):
  """GELU: down(gelu(up x)); SwiGLU: down(silu(gate x) * up x)."""

  def __init__(self, cfg: ml_collections.ConfigDict, dtype: Any, rules: Rules, rngs: nnx.Rngs):
    def proj(spec, shape, logical):
      return dense(spec, shape, logical, bias_dims=1, use_bias=cfg.use_bias, dtype=dtype,
                   rngs=rngs)

    self.swiglu = cfg.activation == "swiglu"
    self.rules = rules
    self.up = proj("BTD,DF->BTF", (cfg.d_model, cfg.d_ff), ("embed", "mlp"))
    self.gate = proj("BTD,DF->BTF", (cfg.d_model, cfg.d_ff), ("embed", "mlp")) if self.swiglu \
        else nnx.data(None)
    self.down = proj("BTF,FD->BTD", (cfg.d_ff, cfg.d_model), ("mlp", "embed"))

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    """x_BxTxD -> [B, T, D], compute dtype."""
    if self.swiglu:
      h_BxTxF = jax.nn.silu(self.gate(x_BxTxD)) * self.up(x_BxTxD)
    else:
      h_BxTxF = jax.nn.gelu(self.up(x_BxTxD))
    return self.down(constrain(h_BxTxF, ("batch", "length", "mlp"), self.rules))


class Block(nnx.Module):
  """Pre-LN block: x += attn(norm x); m = mlp(norm x); the encoding's after_mlp(m) hook; x += m."""

  def __init__(self, cfg: ml_collections.ConfigDict, encoding: Encoding, dtype: Any,
               rules: Rules, rngs: nnx.Rngs):
    self.rules = rules
    self.attn_norm = make_norm(cfg, dtype, rngs)
    self.attn = Attention(
        cfg.d_model, cfg.d_model // cfg.heads, encoding.head_layout(), encoding.layer(rngs),
        use_bias=cfg.use_bias, dropout=cfg.dropout,
        temperature_base=cfg.temperature_base if cfg.temperature == "log_n" else None,
        dtype=dtype, rules=rules, rngs=rngs)
    self.mlp_norm = make_norm(cfg, dtype, rngs)
    self.mlp = Mlp(cfg, dtype, rules, rngs)
    self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)

  def __call__(self, x_BxTxD: jax.Array, positions: jax.Array, state: State, keys: Keys,
               cache: dict | None, *, deterministic: bool):
    """Returns (x_BxTxD, state, cache); see Attention.__call__ for the arguments."""
    y_BxTxD, state, cache = self.attn(self.attn_norm(x_BxTxD), positions, state, keys, cache,
                                      deterministic=deterministic)
    x_BxTxD = x_BxTxD + self.dropout(y_BxTxD, deterministic=deterministic)
    m_BxTxD = self.mlp(self.mlp_norm(x_BxTxD))
    state = self.attn.encoding.after_mlp(state, m_BxTxD)
    x_BxTxD = x_BxTxD + self.dropout(m_BxTxD, deterministic=deterministic)
    return constrain(x_BxTxD, ("batch", "length", "embed"), self.rules), state, cache


class Transformer(nnx.Module):
  """The model: __call__, init_cache, decode, check_length (docs/encodings.md#the-encoding-interface)."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    config_lib.validate(cfg)
    dtype = jnp.dtype(cfg.dtype)
    self.dtype = dtype
    self.causal = cfg.causal
    self.levels = cfg.position_levels
    self.looped = cfg.looped
    self.recurrences = cfg.recurrences
    self.test_recurrences = cfg.test_recurrences
    self.rules = freeze_rules(cfg.logical_rules)
    self.remat = cfg.remat
    dims = Dims(d_model=cfg.d_model, heads=cfg.heads, head_dim=cfg.d_model // cfg.heads,
                causal=cfg.causal, max_position=cfg.max_len, levels=cfg.position_levels,
                dtype=dtype, layers=cfg.layers)
    self.encoding = build_encoding(cfg.encoding, dims, config_lib.encoding_options(cfg),
                                   cfg.randomized_max_len, rngs)
    self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, dtype=dtype,
                           embedding_init=normal_init(), rngs=rngs,
                           embedding_metadata={"logical": ("vocab", "embed")})
    self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
    self.blocks = nnx.List([Block(cfg, self.encoding, dtype, self.rules, rngs)
                            for _ in range(cfg.layers)])
    self.final_norm = make_norm(cfg, dtype, rngs)
    self.unembed = nnx.data(None) if cfg.tied_embeddings else dense(
        "BTD,DV->BTV", (cfg.d_model, cfg.vocab_size), ("embed", "vocab"), bias_dims=1,
        use_bias=False, dtype=dtype, rngs=rngs)

  def check_length(self, max_position_id: int, seq_len: int) -> None:
    """ValueError (naming the encoding and its limit) if the encoding cannot represent
    position IDs up to `max_position_id` in sequences of `seq_len` tokens."""
    self.encoding.check_length(max_position_id, seq_len)

  def __call__(self, tokens_BxT: jax.Array, positions: jax.Array, *,
               mask_BxT: jax.Array | None = None, deterministic: bool = True,
               recurrences: int | None = None) -> jax.Array:
    """Logits float32 [B, T, V] of int32 tokens_BxT at int32 positions [B, T(, L)].

    mask_BxT: bool, True on real tokens (keys that may be attended); None: all real.
    deterministic: False applies dropout. recurrences: looped models only; None = the
    config's (training) `recurrences`.
    """
    mask_BxT = self._mask(tokens_BxT, positions, mask_BxT)
    keys = Keys(positions, allowed_keys(mask_BxT, 0, tokens_BxT.shape[1], self.causal), None)
    logits, _ = self._forward(tokens_BxT, positions, keys, None,
                              recurrences or self.recurrences, deterministic)
    return logits

  def init_cache(self, batch: int, max_len: int, recurrences: int | None = None) -> dict:
    """An empty KV cache for `max_len` tokens (prompt + generated).

    recurrences: looped models only; None = the config's `test_recurrences`.
    Returns {"index": int32 [], "positions": int32 [B, S(, L)], "mask": bool [B, S],
    "layers": [per (recurrence, layer) {"k", "v": [B, S, G, K] compute dtype, + the
    encoding's key data}]}.
    """
    recurrences = recurrences or self.test_recurrences
    pos_shape = (batch, max_len, self.levels) if self.levels else (batch, max_len)
    one = jax.ShapeDtypeStruct((batch, 1, *pos_shape[2:]), jnp.int32)
    layers = []
    for _ in range(recurrences):
      for block in self.blocks:
        key_data = jax.eval_shape(
            lambda p, enc=block.attn.encoding: enc.key_data(p, self.encoding.init_state(p)), one)
        layers.append(block.attn.init_cache(batch, max_len, key_data, self.dtype))
    return {"index": jnp.zeros((), jnp.int32), "positions": jnp.zeros(pos_shape, jnp.int32),
            "mask": jnp.zeros((batch, max_len), bool), "layers": layers}

  def decode(self, tokens_BxT: jax.Array, positions: jax.Array, cache: dict, *,
             mask_BxT: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Appends T tokens to the cache; returns (logits float32 [B, T, V], the new cache).

    Prefill with the (left-padded) prompt and its mask, then feed one token a step. The
    logits equal those of the uncached forward pass over everything cached so far. The
    caller keeps index + T <= the cache's max_len (slots beyond it are not written).
    """
    if not self.causal:
      raise ValueError("decode needs a causal model (model.causal=True)")
    mask_BxT = self._mask(tokens_BxT, positions, mask_BxT)
    index = cache["index"]
    key_mask_BxS = jax.lax.dynamic_update_slice_in_dim(cache["mask"], mask_BxT, index, axis=1)
    key_positions = jax.lax.dynamic_update_slice_in_dim(cache["positions"], positions, index,
                                                        axis=1)
    keys = Keys(key_positions, allowed_keys(key_mask_BxS, index, tokens_BxT.shape[1], True),
                index)
    recurrences = len(cache["layers"]) // len(self.blocks)
    logits, layers = self._forward(tokens_BxT, positions, keys, cache["layers"], recurrences,
                                   True)
    return logits, {"index": index + tokens_BxT.shape[1], "positions": key_positions,
                    "mask": key_mask_BxS, "layers": layers}

  def _mask(self, tokens_BxT: jax.Array, positions: jax.Array,
            mask_BxT: jax.Array | None) -> jax.Array:
    """Checks the shapes of the inputs; the bool key mask (all True when None)."""
    expected = (*tokens_BxT.shape, self.levels) if self.levels else tokens_BxT.shape
    if positions.shape != expected:
      raise ValueError(f"positions shape {positions.shape} does not match tokens "
                       f"{tokens_BxT.shape} with model.position_levels={self.levels} "
                       f"(expected {expected})")
    if mask_BxT is None:
      return jnp.ones(tokens_BxT.shape, bool)
    return mask_BxT.astype(bool)

  def _forward(self, tokens_BxT, positions, keys: Keys, caches, recurrences: int,
               deterministic: bool):
    x_BxTxD = self.encoding.embed(self.embed(tokens_BxT), positions)
    x_BxTxD = constrain(self.dropout(x_BxTxD, deterministic=deterministic),
                        ("batch", "length", "embed"), self.rules)
    blocks = self.blocks
    if self.remat != "none" and caches is None:
      blocks = [remat_block(b, REMAT_POLICIES[self.remat]) for b in self.blocks]
    x_BxTxD, caches = apply_layers(
        blocks, x_BxTxD, positions, self.encoding.init_state(positions), keys, caches,
        recurrences=recurrences, inject=self.looped, deterministic=deterministic)
    x_BxTxD = self.final_norm(x_BxTxD)
    logits = self.embed.attend(x_BxTxD) if self.unembed is None else self.unembed(x_BxTxD)
    return constrain(logits.astype(jnp.float32), ("batch", "length", "vocab"), self.rules), caches


def remat_block(block: Block, policy) -> Callable:
  """`block` as a callable whose activations are recomputed in the backward pass, except
  those `policy` saves (uncached calls only: a KV cache is written, not differentiated)."""
  @nnx.remat(policy=policy, static_argnums=5)
  def call(block, x_BxTxD, positions, state, keys, deterministic):
    return block(x_BxTxD, positions, state, keys, None, deterministic=deterministic)

  return lambda x_BxTxD, positions, state, keys, cache, *, deterministic: call(
      block, x_BxTxD, positions, state, keys, deterministic)


def build(cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs) -> Transformer:
  """The model of `cfg.model` (validated). Build it under `with jax.set_mesh(mesh):`."""
  return Transformer(cfg, rngs=rngs)


def param_count(model: nnx.Module) -> int:
  """Number of parameters (nnx.Param entries); works on nnx.eval_shape'd models too."""
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
