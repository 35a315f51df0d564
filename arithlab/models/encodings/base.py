"""The positional-encoding interface: what an encoding may hook into, and when.

Position IDs are data: the pipeline emits `positions` as int32 `[B, T]` (one level) or
`[B, T, L]` (multi-level, e.g. position coupling), and every encoding consumes them. An
encoding family is one file that registers an `Encoding` subclass:

  @ENCODINGS.register("myenc")
  class MyEncoding(Encoding):
    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, scale: float = 1.0):  # options = kwargs
      super().__init__(dims)
      ...

Then add one import line to encodings/__init__.py. The tests in tests/models/ parametrize
over the registry, so shapes, causality and cached == uncached decoding are checked for the
new encoding (and its `randomized:` variant) with no further work.

Construction. `cls(dims, rngs=rngs, **options)`. Every keyword-only argument other than
`rngs` is an option; its default is the documented default (`options_of(cls)` reads them;
`cfg.model.encoding_options` overrides them, see `config.encoding_options(cfg)`, and an
unknown option is a ValueError listing the valid ones). `dims` (below) says what the
encoding serves. Set `self.limit` (exclusive bound on position IDs) if there is one, and the
class attribute `randomizable = False` if the encoding takes no integer positions.
Hooks run inside jit: pure functions of their arguments and the module's parameters.

Model-level hooks (on the `Encoding`, called once per forward pass):
  check_length(max_position_id, seq_len)  before any compute; raise ValueError naming the
      encoding and its limit. Default: `max_position_id < self.limit` when `limit` is set.
  head_layout() -> HeadLayout             query/kv/output head counts of every attention
      layer (RoPE++ doubles the output heads or halves query and KV heads).
  embed(x_BxTxD, positions) -> x_BxTxD    additive absolute encodings (learned,
      sinusoidal, Abacus, coupling) act on the token embeddings here.
  init_state(positions) -> state          a pytree of per-token arrays `[B, T, ...]` (or
      None) threaded through every layer, e.g. TAPE's features (C, S) `[B, T, H, K/2]`.
      Computed from the positions of the tokens being processed only (in cached decoding,
      the new tokens), so it must be per-token.
  layer(rngs) -> LayerEncoding            one per transformer layer, called in layer order
      (`dims.layers` calls; a looped model builds one per layer of its recurrent block and
      reuses it at every recurrence), so layers may differ (RoPE's layer_pattern). Per-layer
      parameters live there. To share parameters across layers, create them on the
      Encoding and hand the same submodule to every LayerEncoding (NNX keeps shared
      references shared).

Layer-level hooks (on the `LayerEncoding`, called by every attention layer):
  queries_keys(q_BxTxQxK, k_BxTxGxK, positions, state) -> (q_BxTxHxK, k_BxTxGxK)
      rotary encodings rotate q and k here (RoPE; TAPE with its features). It may change
      the number of query heads from Q = head_layout().query to H = head_layout().out
      (RoPE++ interleaves imaginary heads with their real partners). Only the new tokens
      pass through: their keys are cached already rotated.
  key_data(positions, state) -> dict[str, [B, T, ...]]
      per-key data the layer's KV cache stores beside k and v (TAPE: this layer's (C, S)).
      Default: {}. Key position IDs are always cached by the model; no need to add them.
  bias(query_positions, key_positions, state) -> [B or 1, H, T, S] float32, or None
      additive attention-logit bias (ALiBi, T5 buckets, FIRE). query_positions
      `[B, T(, L)]`, key_positions `[B, S(, L)]` (S = all keys, cached ones included).
  after_attention(state, probs_BxHxTxS, key_data) -> state
      probs: the softmax weights (float32, before dropout; zero on keys not attended);
      key_data: `key_data` of all S keys. TAPE averages its features here.
  after_mlp(state, x_BxTxD) -> state
      x: the MLP's output (before dropout and the residual add), as both TAPE reference
      codes feed it. TAPE's feature MLP goes here.

Head layout: the attention computes `query` heads, `kv` heads of keys and values, and
after `queries_keys` `out` heads; head h attends with kv head h // (out // kv), and the
output projection reads out * head_dim features.

Attention logits are q.k / sqrt(head_dim) + bias, then (if configured) the length
temperature, then the mask. A randomized variant (`randomized:<name>`) is built by
randomized.py from the base class with `dims.max_position = L`; it changes no hook.
"""

import dataclasses
import inspect
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from data_gen.registry import Registry

State = Any  # a pytree of per-token arrays [B, T, ...] or None

ENCODINGS: Registry[type["Encoding"]] = Registry("encoding")


@dataclasses.dataclass(frozen=True)
class Dims:
  """What an encoding may read about the model it serves.

  d_model: D. heads: H, the configured attention heads. head_dim: K = D // H.
  causal: decoder (True) or encoder (False). max_position: exclusive bound on the position
  IDs the encoding must accept (the model's max_len; L for randomized variants).
  levels: L of `[B, T, L]` position IDs, or 0 for `[B, T]`. dtype: the compute dtype
  (parameters are float32). layers: how many times `Encoding.layer` is called (model.layers;
  in a looped model the layers of its recurrent block), once per layer in layer order.
  """

  d_model: int
  heads: int
  head_dim: int
  causal: bool
  max_position: int
  levels: int
  dtype: Any
  layers: int


@dataclasses.dataclass(frozen=True)
class HeadLayout:
  """Head counts of one attention layer: query projection, key/value projections, softmax."""

  query: int
  kv: int
  out: int


class LayerEncoding(nnx.Module):
  """The per-layer part of an encoding. The defaults change nothing (NoPE)."""

  def queries_keys(self, q_BxTxQxK: jax.Array, k_BxTxGxK: jax.Array, positions: jax.Array,
                   state: State) -> tuple[jax.Array, jax.Array]:
    """Returns (q_BxTxHxK, k_BxTxGxK) in the compute dtype; see the module docstring."""
    del positions, state
    return q_BxTxQxK, k_BxTxGxK

  def key_data(self, positions: jax.Array, state: State) -> dict[str, jax.Array]:
    """Per-key arrays `[B, T, ...]` the KV cache keeps for this layer."""
    del positions, state
    return {}

  def bias(self, query_positions: jax.Array, key_positions: jax.Array,
           state: State) -> jax.Array | None:
    """Additive logit bias, float32 `[B or 1, H, T, S]`, or None for no bias."""
    del query_positions, key_positions, state
    return None

  def after_attention(self, state: State, probs_BxHxTxS: jax.Array,
                      key_data: dict[str, jax.Array]) -> State:
    """Updates the encoding state with the attention weights of this layer."""
    del probs_BxHxTxS, key_data
    return state

  def after_mlp(self, state: State, x_BxTxD: jax.Array) -> State:
    """Updates the encoding state from the MLP output of this layer."""
    del x_BxTxD
    return state


class Encoding(nnx.Module):
  """The model-level part of an encoding. The defaults change nothing (NoPE).

  `limit`: exclusive bound on position IDs (None: any integer ID works).
  `randomizable`: whether `randomized:<name>` makes sense (the encoding reads integer IDs).
  `name`: the registry name, set by `build_encoding`.
  `distinct_positions`: True when every token gets its own ID in [0, limit), so a sequence
  longer than `limit` cannot be encoded (set for randomized variants).
  """

  randomizable: ClassVar[bool] = True

  def __init__(self, dims: Dims):
    self.dims = dims
    self.limit: int | None = None
    self.name = type(self).__name__
    self.distinct_positions = False

  def check_length(self, max_position_id: int, seq_len: int) -> None:
    """Raises ValueError when `max_position_id` or `seq_len` exceed what this encoding holds."""
    if self.limit is None:
      return
    if self.distinct_positions and seq_len > self.limit:
      raise ValueError(f"encoding {self.name!r} gives {seq_len} tokens distinct position ids in "
                       f"[0, {self.limit}): raise the limit above {seq_len}")
    if max_position_id >= self.limit:
      raise ValueError(
          f"position id {max_position_id} exceeds the limit of encoding {self.name!r}: ids must "
          f"be < {self.limit}; raise max_len (or the encoding's size option) or shorten the eval")

  def head_layout(self) -> HeadLayout:
    heads = self.dims.heads
    return HeadLayout(query=heads, kv=heads, out=heads)

  def embed(self, x_BxTxD: jax.Array, positions: jax.Array) -> jax.Array:
    """Adds an absolute encoding to the token embeddings (compute dtype, `[B, T, D]`)."""
    del positions
    return x_BxTxD

  def init_state(self, positions: jax.Array) -> State:
    """The per-token state entering layer 0 (see the module docstring)."""
    del positions
    return None

  def layer(self, rngs: nnx.Rngs) -> LayerEncoding:
    """A new per-layer part."""
    del rngs
    return LayerEncoding()


def options_of(cls: type[Encoding]) -> dict[str, Any]:
  """The options of an encoding class and their defaults (its keyword-only arguments)."""
  params = inspect.signature(cls.__init__).parameters.values()
  return {p.name: p.default for p in params
          if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "rngs"}


def check_options(name: str, cls: type[Encoding], options: dict[str, Any]) -> None:
  """Raises ValueError naming any option `cls` does not take."""
  valid = options_of(cls)
  unknown = sorted(set(options) - set(valid))
  if unknown:
    raise ValueError(f"encoding {name!r} has no option(s) {unknown}; valid options: "
                     f"{sorted(valid) or 'none'}")


def single_level(positions: jax.Array, name: str) -> jax.Array:
  """The `[B, T]` IDs of one-level position IDs; ValueError for `[B, T, L]` IDs.

  Encodings of a scalar position (RoPE, ALiBi, sinusoidal, learned) do not guess which
  level of multi-level IDs to use: they refuse them.
  """
  if positions.ndim != 2:
    raise ValueError(f"encoding {name!r} takes position ids of shape [B, T]; got shape "
                     f"{positions.shape} (multi-level ids need e.g. the 'coupling' encoding)")
  return positions


def normal_init(stddev: float = 0.02):
  """The initializer every table and projection uses (GPT-2 style)."""
  return jax.nn.initializers.normal(stddev)


def dense(spec: str, shape: tuple[int, ...], logical: tuple[str | None, ...], *,
          bias_dims: int, use_bias: bool, dtype: Any, rngs: nnx.Rngs) -> nnx.Einsum:
  """An einsum projection whose float32 kernel `shape` has logical names `logical`.

  spec: e.g. "BTD,DHK->BTHK"; bias_dims: how many trailing kernel dims the bias spans
  (used only when use_bias); dtype: the compute dtype.
  """
  return nnx.Einsum(spec, shape, shape[-bias_dims:] if use_bias else None, dtype=dtype,
                    kernel_init=normal_init(), rngs=rngs, kernel_metadata={"logical": logical},
                    bias_metadata={"logical": logical[-bias_dims:]})


def table(rows: int, dims: Dims, rngs: nnx.Rngs) -> nnx.Param:
  """A learned float32 `[rows, D]` embedding table indexed by position IDs."""
  return nnx.Param(normal_init()(rngs.params(), (rows, dims.d_model), jnp.float32),
                   logical=("length", "embed"))


def add_rows(x_BxTxD: jax.Array, table_PxD: nnx.Param, ids_BxT: jax.Array) -> jax.Array:
  """x + table[ids]: the rows of a learned position table added to the embeddings."""
  return x_BxTxD + table_PxD[...][ids_BxT].astype(x_BxTxD.dtype)
