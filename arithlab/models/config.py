"""The model config (`cfg.model`): defaults, validation and the papers' presets."""

import math

import ml_collections

from arithlab.models.encodings import ENCODINGS, encoding_class, options_of
from arithlab.models.encodings.base import check_options
from arithlab.models.encodings.rope_scaling import parse_scaling
from arithlab.models.sharding import DEFAULT_RULES

NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "swiglu")
DTYPES = ("float32", "bfloat16")
TEMPERATURES = ("none", "log_n")
REMAT = ("none", "full", "dots")


def default_model_config() -> ml_collections.ConfigDict:
  """Every model field with its default; a tiny RoPE decoder."""
  cfg = ml_collections.ConfigDict()
  cfg.layers = 2  # distinct layers (in a looped model: the recurrent block)
  cfg.d_model = 32
  cfg.heads = 4
  cfg.d_ff = 128
  cfg.vocab_size = 32  # set from the tokenizer
  cfg.dropout = 0.0  # embeddings, attention weights, attention and MLP outputs
  cfg.norm = "layernorm"  # pre-LN: "layernorm" | "rmsnorm"
  cfg.activation = "gelu"  # "gelu" (tanh approximation) | "swiglu"
  cfg.use_bias = False  # biases in projections and LayerNorm (nanoGPT: True)
  cfg.tied_embeddings = True
  cfg.causal = True  # False: encoder-only (Ruoss/Deletang protocol)
  cfg.encoding = "rope"  # a registry name, optionally "randomized:<name>"
  cfg.encoding_options = ml_collections.ConfigDict()  # the encoding's options, e.g. base=10000.0
  cfg.max_len = 256  # position IDs < max_len for table encodings (learned, coupling)
  cfg.position_levels = 0  # 0: positions [B, T]; L: positions [B, T, L]
  cfg.randomized_max_len = 2048  # L of randomized:<name> (Ruoss et al.)
  cfg.looped = False  # McLeish: the layers form a block applied `recurrences` times
  cfg.recurrences = 1  # recurrences in the forward pass (training)
  cfg.test_recurrences = 1  # recurrences of the KV cache (decoding)
  cfg.temperature = "none"  # "log_n": logits *= log(n) / log(temperature_base), n = keys seen
  cfg.temperature_base = math.e  # e: log n (Chiang & Cholak); the training length: = 1 there
  cfg.dtype = "float32"  # compute dtype; parameters are float32
  cfg.remat = "none"  # training forward: "none" keeps every activation; "full" recomputes each
  #   block in the backward pass; "dots" keeps its weight matmuls' outputs, recomputes the rest
  cfg.logical_rules = DEFAULT_RULES
  return cfg


def _choice(cfg, field: str, choices: tuple[str, ...]) -> None:
  if cfg[field] not in choices:
    raise ValueError(f"model.{field}={cfg[field]!r} unknown; choose one of: {', '.join(choices)}")


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad field of a model config and what is valid."""
  _choice(cfg, "norm", NORMS)
  _choice(cfg, "activation", ACTIVATIONS)
  _choice(cfg, "dtype", DTYPES)
  _choice(cfg, "temperature", TEMPERATURES)
  _choice(cfg, "remat", REMAT)
  check_options(cfg.encoding, encoding_class(cfg.encoding), dict(cfg.encoding_options))
  for field in ("layers", "d_model", "heads", "d_ff", "vocab_size", "max_len", "recurrences",
                "test_recurrences"):
    if cfg[field] < 1:
      raise ValueError(f"model.{field}={cfg[field]} must be >= 1")
  if cfg.d_model % cfg.heads:
    raise ValueError(f"model.d_model={cfg.d_model} must be a multiple of model.heads={cfg.heads}")
  if not cfg.looped and (cfg.recurrences != 1 or cfg.test_recurrences != 1):
    raise ValueError(f"model.recurrences={cfg.recurrences} and model.test_recurrences="
                     f"{cfg.test_recurrences} need model.looped=True (else both must be 1)")
  if not 0.0 <= cfg.dropout < 1.0:
    raise ValueError(f"model.dropout={cfg.dropout} must be in [0, 1)")
  if cfg.temperature == "log_n" and cfg.temperature_base <= 1.0:
    raise ValueError(f"model.temperature_base={cfg.temperature_base} must be > 1")


def encoding_options(cfg: ml_collections.ConfigDict) -> dict:
  """The encoding's options: its defaults overridden by `cfg.encoding_options`."""
  return {**options_of(encoding_class(cfg.encoding)), **dict(cfg.encoding_options)}


def with_rope_scaling(cfg: ml_collections.ConfigDict, spec: str) -> ml_collections.ConfigDict:
  """A copy of model config `cfg` whose encoding uses RoPE scaling `spec` ("none", "linear:4",
  "ntk:4", "yarn:4:64", ...; encodings/rope_scaling.py): the evaluation-time override.

  The scaling is a static option that changes no parameter shape, so the parameters of a model
  built from `cfg` load into the model built from the copy (`nnx.update(model,
  nnx.state(trained, nnx.Param))`, or restoring the checkpoint into it).

  Raises:
    ValueError: when the encoding has no `scaling` option (naming those that have one) or the
      spec is malformed.
  """
  if "scaling" not in options_of(encoding_class(cfg.encoding)):
    scalable = [name for name in ENCODINGS.names() if "scaling" in options_of(ENCODINGS.get(name))]
    raise ValueError(f"model.encoding={cfg.encoding!r} takes no RoPE scaling; encodings with a "
                     f"`scaling` option: {', '.join(scalable)} (and their randomized: variants)")
  parse_scaling(spec)
  scaled = cfg.copy_and_resolve_references()
  with scaled.unlocked():
    scaled.encoding_options.scaling = spec
  return scaled


def lee_config(vocab_size: int) -> ml_collections.ConfigDict:
  """Lee et al. 2023 (NanoGPT): 6 layers, 6 heads, d=384, dropout 0.2, learned positions
  over a 256-token block, biases, tied embeddings, GELU, LayerNorm."""
  cfg = default_model_config()
  cfg.update(layers=6, heads=6, d_model=384, d_ff=4 * 384, vocab_size=vocab_size, dropout=0.2,
             use_bias=True, encoding="learned", max_len=256)
  return cfg


def shen_config(vocab_size: int) -> ml_collections.ConfigDict:
  """Shen et al. 2023 (~100M, 12 layers): GPT-2-small shape, d=768, 12 heads, learned
  positions over 1024 tokens."""
  cfg = default_model_config()
  cfg.update(layers=12, heads=12, d_model=768, d_ff=4 * 768, vocab_size=vocab_size, dropout=0.1,
             use_bias=True, encoding="learned", max_len=1024)
  return cfg
