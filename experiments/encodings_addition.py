"""Positional encodings compared on addition length generalization: train on operands of at
most 10 digits, test up to 30 (docs/evaluation.md#encodings_addition).

  python -m arithlab.sweep --config=experiments/encodings_addition.py:small --workdir=runs/encodings_small

Encodings (the sweep's `encoding` labels, each with the position rule it reads, see
`arithlab.sweep.encoding_axis`): none (NoPE), learned, rope, randomized:rope (Ruoss et al.,
positions a sorted random subset of 0..255), fire (Li et al.), abacus (McLeish et al., training
offsets up to 30), coupling (Cho et al., IDs up to 40), tape (Zhu et al.). One format for all:
both operands and the answer least-significant digit first (`321+7654=0964` for 123+4567), one
token per character, loss on the answer. The longest training number is 10 digits, so the
eval grid 1..30 x 1..30 is in distribution only in its 10 x 10 corner; the report plots exact
match against a cell's longer operand.

Full budget (ours; no single paper has this setting): 6 layers x 384, 6 heads, 20,000 steps of
256, 100 problems per cell, 3 seeds. `:small` (2-core CPU): 2 layers x 128, 4 heads, 6,000
steps of 64, 2 problems per cell raised so that every length pools >= 100, one seed. The paper
numbers listed are each paper's own headline in its own setting (longer training lengths,
larger models); they show what each method reached, not what this setting should give.
"""

import ml_collections

from arithlab import config, report, sweep

ENCODINGS = ("none", "learned", "rope", "randomized:rope", "fire", "abacus", "coupling", "tape")
SEEDS = {"full": (0, 1, 2), "small": (0,), "micro": (0,)}
TRAIN_MAX, TEST_MAX = 10, 30

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = (
    report.Reference({"encoding": "abacus"}, 0.99, "McLeish et al. 2024 (abstract)",
                     "train <= 20 digits, 100-digit addition, looped model", approximate=True, length=100),
    report.Reference({"encoding": "coupling"}, 0.95, "Cho et al. 2024 (abstract: 30 -> 200 digits; value not checked)",
                     "train 1-30 digits, test 200", approximate=True, length=200),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (encoding rope); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "encodings_addition.py")
  cfg = config.default_config()
  cfg.name = "encodings_addition"
  cfg.data.update(task="addition", format="reverse_operands+reverse_answer", tokenizer="char",
                  positions="sequential", loss="answer", max_len=64)
  cfg.data.train_lengths = {"len_0": (1, TRAIN_MAX), "len_1": (1, TRAIN_MAX)}
  cfg.eval.lengths = {"len_0": (1, TEST_MAX), "len_1": (1, TEST_MAX)}
  cfg.model.update(layers=6, d_model=384, heads=6, d_ff=1536, encoding="rope", max_len=128)
  cfg.train.update(steps=20000, batch_size=256, lr=1e-3, warmup_steps=500)
  cfg.eval.update(every=5000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=5000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, steps=6000, n_per_cell=2, eval_batch=900)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (TRAIN_MAX, TRAIN_MAX + 1), "len_1": (TRAIN_MAX, TRAIN_MAX)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """encoding x seed (micro: coupling alone)."""
  size = sweep.budget(arg, "encodings_addition.py")
  names = ("coupling",) if size == "micro" else ENCODINGS
  return sweep.product(sweep.encoding_axis(names, max_pos=40, max_offset=30, randomized_len=256),
                       sweep.field_axis("seed", "seed", SEEDS[size]))
