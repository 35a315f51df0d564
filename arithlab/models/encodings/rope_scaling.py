"""RoPE frequency scaling for length extrapolation: the formulas, as pure functions.

RoPE turns feature pair n of a d-feature spectrum by the angle p * theta_n for position ID p,
theta_n = base^(-2n/d), n < d/2 (wavelength lambda_n = 2 pi / theta_n). A scaling with factor
s >= 1 replaces theta_n by theta'_n:

  none    theta'_n = theta_n.
  linear  Position Interpolation (Chen et al. 2023, arXiv 2306.15595): positions p -> p / s,
          i.e. theta'_n = theta_n / s.
  ntk     NTK-aware scaling (bloc97 2023, as defined in the YaRN paper below):
          base' = base * s^(d / (d - 2)), theta'_n = base'^(-2n/d).
          The highest frequency (n = 0) is kept, the lowest (n = d/2 - 1) becomes theta_n / s.
  yarn    YaRN (Peng et al. 2023, arXiv 2309.00071, "NTK-by-parts" + attention temperature):
          r_n = L / lambda_n, L the original (training) context length;
          gamma(r) = 0 if r < alpha, 1 if r > beta, (r - alpha) / (beta - alpha) otherwise;
          theta'_n = (1 - gamma(r_n)) theta_n / s + gamma(r_n) theta_n
                   = theta_n (1/s + gamma(r_n) (1 - 1/s))   (the form computed: exact at s = 1);
          alpha = 1, beta = 32 (the paper's LLaMA values). Pairs turning more than beta times
          over L keep their frequency (extrapolate), pairs turning less than alpha times are
          interpolated by s. Attention temperature: softmax(q.k / (t sqrt(K))) with
          sqrt(1/t) = 0.1 ln(s) + 1: q and k are both multiplied by sqrt(1/t) (`qk_scale`), as the
          reference multiplies cos and sin by `mscale`.
          The reference code (jquesnelle/yarn; HF transformers `_compute_yarn_parameters`) ramps
          linearly in the pair index n instead of in r, between the indices where r = beta and
          r = alpha (rounded outward with floor/ceil); this module follows the paper's ramp.

A scaling is a static option: it changes no parameter, so parameters trained with one scaling
load into a model built with another (evaluation-time scaling).
"""

import dataclasses
import math

import numpy as np

SPEC_FORMS = "none | linear:<s> | ntk:<s> | yarn:<s>:<original_max_len>[:<alpha>:<beta>]"


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """kind ("none" | "linear" | "ntk" | "yarn"); factor s >= 1; original_max_len L (yarn only); yarn's ramp bounds
  alpha < beta in turns over L."""

  kind: str = "none"
  factor: float = 1.0
  original_max_len: int = 0
  alpha: float = 1.0
  beta: float = 32.0


NO_SCALING = RopeScaling()


def parse_scaling(spec: str) -> RopeScaling:
  """The RopeScaling of a spec string: "none", "linear:4", "ntk:4", "yarn:4:64", "yarn:4:64:1:32".

  Raises:
    ValueError: naming the spec and the valid forms (unknown kind, wrong field count, s < 1,
      L < 1, alpha >= beta).
  """
  kind, *fields = spec.split(":")
  counts = {"none": (0,), "linear": (1,), "ntk": (1,), "yarn": (2, 4)}
  if kind not in counts or len(fields) not in counts[kind]:
    raise ValueError(f"rope scaling {spec!r} unknown; use one of: {SPEC_FORMS}")
  if kind == "none":
    return NO_SCALING
  try:
    numbers = [float(f) for f in fields]
  except ValueError:
    raise ValueError(f"rope scaling {spec!r} has a field that is not a number; use one of: "
                     f"{SPEC_FORMS}") from None
  factor, *rest = numbers
  if factor < 1.0:
    raise ValueError(f"rope scaling {spec!r}: the factor s={factor} must be >= 1")
  if kind != "yarn":
    return RopeScaling(kind, factor)
  length, *bounds = rest
  if length < 1 or length != int(length):
    raise ValueError(f"rope scaling {spec!r}: the original context length {length} must be a "
                     f"positive integer")
  scaling = RopeScaling(kind, factor, int(length), *bounds)
  if not scaling.alpha < scaling.beta:
    raise ValueError(f"rope scaling {spec!r}: yarn needs alpha < beta, got alpha="
                     f"{scaling.alpha}, beta={scaling.beta}")
  return scaling


def base_frequencies(dims: int, base: float) -> np.ndarray:
  """float64 [dims // 2]: theta_n = base^(-2n/dims), n < dims // 2."""
  return base ** (-2.0 * np.arange(dims // 2, dtype=np.float64) / dims)


def ntk_base(dims: int, base: float, factor: float) -> float:
  """NTK-aware base: base * factor^(dims / (dims - 2)); ValueError for dims <= 2."""
  if dims <= 2:
    raise ValueError(f"ntk scaling needs a spectrum of more than 2 features, got {dims}: rotate "
                     f"more features (raise the rope fraction)")
  return base * factor ** (dims / (dims - 2))


def yarn_ramp(dims: int, base: float, original_max_len: int, alpha: float,
              beta: float) -> np.ndarray:
  """float64 [dims // 2]: gamma(r_n) in [0, 1], r_n = L / lambda_n (1: keep theta_n; 0: use
  theta_n / s)."""
  r_F = original_max_len * base_frequencies(dims, base) / (2 * math.pi)
  return np.clip((r_F - alpha) / (beta - alpha), 0.0, 1.0)


def inverse_frequencies(dims: int, base: float, scaling: RopeScaling) -> np.ndarray:
  """float64 [dims // 2]: the scaled theta'_n of a dims-feature spectrum (module docstring)."""
  s = scaling.factor
  if scaling.kind == "ntk":
    return base_frequencies(dims, ntk_base(dims, base, s))
  theta_F = base_frequencies(dims, base)
  if scaling.kind == "linear":
    return theta_F / s
  if scaling.kind == "yarn":
    gamma_F = yarn_ramp(dims, base, scaling.original_max_len, scaling.alpha, scaling.beta)
    return theta_F * (1.0 / s + gamma_F * (1.0 - 1.0 / s))
  return theta_F


def qk_scale(scaling: RopeScaling) -> float:
  """The factor q and k are multiplied by: YaRN's sqrt(1/t) = 0.1 ln(s) + 1; 1.0 otherwise."""
  if scaling.kind == "yarn":
    return 0.1 * math.log(scaling.factor) + 1.0
  return 1.0
