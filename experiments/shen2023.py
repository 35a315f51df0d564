"""Shen et al. 2023, "Positional Description Matters for Transformers Arithmetic"
(docs/evaluation.md#shen2023): direct multiplication, and the format tricks that make it work.

  python -m arithlab.sweep --config=experiments/shen2023.py:small --workdir=runs/shen_small

Ablation (the sweep's `format` labels): basic `12*34=408`, reverse (product reversed),
pad (both factors zero-padded to the test width, the product to twice that), pad+reverse
(both tricks, their recipe). One token per digit, loss on the answer.
Full budget: their GPT-2-small shape (`models.shen_config`: 12 layers x 768, ~100M), factors
of 1-15 digits padded to 15; 20,000 steps of 256 (ours, unverified). Deviation: the paper
trains on 300k fixed samples; a fixed set that small of a 10^30-problem space cannot be cut
by the hash split (data_gen has no fixed-size training set), so training draws fresh
problems. `:small` (2-core CPU): 4 layers x 128, factors of 1-4 digits padded to 4, 6,000
steps of 64, one seed. The headline is exact match over the grid (all cells in distribution:
Shen tests the trained lengths), and the length plot is by the longer factor.
"""

import ml_collections

from arithlab import config, models, report, sweep

BUDGET = {"full": (15, (0, 1, 2)), "small": (4, (0,)), "micro": (2, (0,))}  # factor digits, seeds

REPORT = report.Spec(metric="eval/exact_id")
REFERENCE = (
    report.Reference({"format": "pad+reverse"}, 1.0, "Shen et al. 2023 (abstract; table not checked)",
                     "essentially perfect up to 12 x 12 digits (strong at 15 x 15), 100M model, 300k samples",
                     approximate=True, length=12),
    report.Reference({"format": "basic"}, 0.0, "Shen et al. 2023 (abstract; table not checked)",
                     "usual training 'fails at 4-digit multiplication' (value not given: shown as ~0)",
                     approximate=True, length=4),
)


def formats(width: int) -> dict[str, str]:
  """Format label -> data.format for factors padded to `width` digits."""
  return {"basic": "plain", "reverse": "reverse_answer", "pad": f"pad{width}", "pad+reverse": f"pad{width}+reverse_answer"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (pad+reverse); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "shen2023.py")
  width = BUDGET[size][0]
  cfg = config.default_config()
  cfg.name = "shen2023"
  cfg.data.update(task="multiplication", format=formats(width)["pad+reverse"], tokenizer="char",
                  positions="sequential", loss="answer", max_len=8 * width)
  cfg.data.train_lengths = {"len_a": (1, width), "len_b": (1, width)}
  cfg.eval.lengths = {"len_a": (1, width), "len_b": (1, width)}
  cfg.model = models.shen_config(cfg.model.vocab_size)
  cfg.train.update(steps=20000, batch_size=256, lr=1e-4, warmup_steps=1000)
  cfg.eval.update(every=5000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=5000, keep=1, best_metric="val/exact_id")
  if size == "small":
    cfg.model.update(layers=4, d_model=128, heads=4, d_ff=512, dropout=0.0, max_len=64)
    cfg.train.update(steps=6000, batch_size=64, lr=1e-3, warmup_steps=200)
    cfg.eval.update(every=3000, n_per_cell=50, batch_size=800, min_per_length=sweep.MIN_PER_LENGTH,
                    val_n_per_cell=50)
  elif size == "micro":
    sweep.micro(cfg, {"len_a": (2, 2), "len_b": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """format x seed (micro: pad+reverse alone)."""
  size = sweep.budget(arg, "shen2023.py")
  width, seeds = BUDGET[size]
  labels = formats(width)
  if size == "micro":
    labels = {"pad+reverse": labels["pad+reverse"]}
  return sweep.product(sweep.axis("format", {k: {"data.format": v} for k, v in labels.items()}),
                       sweep.field_axis("seed", "seed", seeds))
