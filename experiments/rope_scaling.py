"""RoPE context-extension tricks on addition length generalization (issue 9): plain RoPE,
position interpolation (PI), NTK-aware base scaling and YaRN, applied while training or only
at evaluation.

  python -m arithlab.sweep --config=experiments/rope_scaling.py:small --workdir=runs/rope_small

The setting of experiments/encodings_addition.py with its `rope` encoding (its `get_config`,
so the plain point here is that file's rope point): operands of at most 10 digits in training,
the 1..30 x 1..30 grid in evaluation, both operands and the answer least-significant digit
first, one token per character, sequential position IDs. A training sequence ends at position
ID 34 (L = 35 positions); a 30 x 30 problem at about 95, so the factor is s = 3 (95 / 3 < 35)
and YaRN's original context is L = 35 (formulas: arithlab/models/encodings/rope_scaling.py).

Budgets as encodings_addition.py (full: 6 x 384, 20,000 steps, 3 seeds; `:small`: 2 x 128 on a
2-core CPU, one seed; `:micro`: YaRN at evaluation alone, seconds). No paper reports these scalings on
addition, so there are no reference numbers.

Evaluation-time points (`pi@eval`, `ntk@eval`, `yarn@eval`) train plain RoPE and decode with
the scaling (`eval.rope_scaling`, applied by `arithlab.models.with_rope_scaling` to the eval
model only; recorded in each eval grid's JSON). Their runs are the `none` point's run, so the
sweep runner trains that once and scores its final checkpoint for each of them (see
arithlab/sweep.py). To rescore any trained run by hand:
  python -m arithlab.main --mode=evaluate --config=experiments/rope_scaling.py:small \
      --workdir=<the none point's directory> --config.eval.rope_scaling=yarn:3:35
"""

import os

import ml_collections

from arithlab import report, sweep

SCALINGS = {"none": "none", "pi": "linear:3", "ntk": "ntk:3", "yarn": "yarn:3:35"}
# The sweep's scaling labels: trained with the scaling, or trained plain and evaluated with it.
POINTS = {**{name: {"model.encoding_options.scaling": spec} for name, spec in SCALINGS.items()},
          **{f"{name}@eval": {"eval.rope_scaling": spec} for name, spec in SCALINGS.items() if name != "none"}}
SEEDS = {"full": (0, 1, 2), "small": (0,), "micro": (0,)}

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = ()

_ADDITION, _ = sweep.load_experiment(os.path.join(os.path.dirname(__file__),
                                                  "encodings_addition.py"))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """encodings_addition.py's run with rope, scaling "none"; arg: None (full), "small", "micro"."""
  sweep.budget(arg, "rope_scaling.py")
  cfg = _ADDITION.get_config(arg)
  cfg.name = "rope_scaling"
  cfg.model.encoding = "rope"
  cfg.model.encoding_options.scaling = "none"
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """scaling (none, pi, ntk, yarn, pi@eval, ntk@eval, yarn@eval) x seed (micro: yarn@eval alone)."""
  size = sweep.budget(arg, "rope_scaling.py")
  names = ("yarn@eval",) if size == "micro" else tuple(POINTS)
  return sweep.product(
      sweep.axis("scaling", {name: POINTS[name] for name in names}),
      sweep.field_axis("seed", "seed", SEEDS[size]))
