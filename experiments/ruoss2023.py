"""Ruoss et al. 2023, "Randomized Positional Encodings Boost Length Generalization of
Transformers" (docs/evaluation.md#ruoss2023): bucket sort (`10204112 -> 00111224`), trained on lengths 1-40,
tested on 41-500, with and without randomized positions.

  python -m arithlab.sweep --config=experiments/ruoss2023.py:small --workdir=runs/ruoss_small

Sweep: base encoding (sinusoidal, rope, alibi, t5 relative bias) x randomized (no: sequential
positions; yes: a sorted random subset of 0..L-1, L = 2048, at training and test time) x
learning rate x seeds, scored by per-token accuracy over the test lengths (`eval/digit_ood`,
the answer's digit tokens).
Deviations: the paper's model is an encoder that emits all outputs at once; arithlab trains
decoders scored by greedy decoding, so this is a causal decoder of their size (5 layers x 64,
8 heads, MLP 256). Their relative encoding (Transformer-XL style, with a known bug) is
replaced by T5's bucketed bias. Full budget (theirs): batch 128, grad clip 1, 1M steps,
lr in {1e-4, 3e-4, 1e-3}, 10 seeds, 512 problems per test length (ours: 64, evaluated every
100k steps). `:small` (2-core CPU): train 1-10, test to 30, L = 256, sinusoidal and rope
only, lr 1e-3, 4,000 steps of 64, one seed.
"""

import ml_collections

from arithlab import config, report, sweep

BASES = {"full": ("sinusoidal", "rope", "alibi", "t5"), "small": ("sinusoidal", "rope"), "micro": ("rope",)}
LRS = {"full": (1e-4, 3e-4, 1e-3), "small": (1e-3,), "micro": (1e-3,)}
BUDGET = {  # train max, test max, randomized L, seeds
    "full": (40, 500, 2048, tuple(range(10))), "small": (10, 30, 256, (0,)), "micro": (2, 3, 64, (0,))}

REPORT = report.Spec(metric="eval/digit_ood")
_PAPER = "Ruoss et al. 2023 (bucket sort; table not checked, base encoding not recorded)"
REFERENCE = (
    report.Reference({"randomized": "no"}, 0.92, _PAPER, "per-token accuracy on lengths 41-500 without randomized positions",
                     approximate=True),
    report.Reference({"randomized": "yes"}, 1.0, _PAPER, "the same with randomized positions", approximate=True),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (randomized RoPE); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "ruoss2023.py")
  train_max, test_max, length, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "ruoss2023"
  cfg.data.update(task="bucket_sort", format="plain", tokenizer="char", positions="randomized", loss="answer",
                  max_len=2 * train_max + 16)
  cfg.data.position_options = {"L": length}
  cfg.data.train_lengths = {"length": (1, train_max)}
  cfg.eval.lengths = {"length": (1, test_max)}
  cfg.model.update(layers=5, d_model=64, heads=8, d_ff=256, encoding="randomized:rope", randomized_max_len=length)
  cfg.train.update(steps=1_000_000, batch_size=128, lr=1e-3, warmup_steps=1000, grad_clip=1.0)
  cfg.eval.update(every=100_000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=100_000, keep=1, best_metric="val/digit_ood")
  if size == "small":
    cfg.train.update(steps=4000, batch_size=64, warmup_steps=200)
    cfg.eval.update(every=2000, n_per_cell=32, batch_size=960, min_per_length=sweep.MIN_PER_LENGTH,
                    val_n_per_cell=32)
  elif size == "micro":
    sweep.micro(cfg, {"length": (2, 3)})
  return cfg


def randomization_axes(bases, length: int) -> list[sweep.Point]:
  """Points labelled (encoding=<base>, randomized=no|yes): the base on sequential positions, or
  randomized:<base> on random subsets of 0..length-1."""
  points = []
  for base in bases:
    for label, name in (("no", base), ("yes", f"randomized:{base}")):
      (point,) = sweep.encoding_axis([name], randomized_len=length)
      points.append(sweep.Point({"encoding": base, "randomized": label}, point.overrides))
  return points


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """(encoding, randomized) x lr x seed (micro: randomized RoPE alone)."""
  size = sweep.budget(arg, "ruoss2023.py")
  length, seeds = BUDGET[size][2:]
  encodings = randomization_axes(BASES[size], length)
  if size == "micro":
    encodings = [p for p in encodings if p.axes["randomized"] == "yes"]
  return sweep.product(encodings, sweep.field_axis("lr", "train.lr", LRS[size]), sweep.field_axis("seed", "seed", seeds))
