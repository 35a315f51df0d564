"""Cho et al. 2024, "Position Coupling" (docs/evaluation.md#cho2024): digits of equal significance share a
position ID; trained on 1-30 digit addition, tested to 200.

  python -m arithlab.sweep --config=experiments/cho2024.py:small --workdir=runs/cho_small

Setting (their format): operands zero-padded to equal length, the answer zero-padded to one
digit more and reversed (`0123+4567=09640`), one token per digit, loss on the answer. Coupled
IDs: digit of significance i gets s + 1 + i, `+` and `=` get s, with s ~ U[1, max_pos - len]
in training and s = 1 at test; a learned table over the IDs. Baselines: NoPE and RoPE on
sequential positions. Full budget (our reading, unverified): 6 layers x 512, 8 heads,
50,000 steps of 256, max_pos 256, 100 problems per cell of the 200 x 200 grid, 3 seeds. `:small` (2-core CPU): 2 layers x 128, train 1-5, test to 15,
max_pos 20, 4,000 steps of 64, one seed.
"""

import ml_collections

from arithlab import config, report, sweep

ENCODINGS = ("coupling", "none", "rope")
BUDGET = {  # train max, test max, coupling max_pos, seeds
    "full": (30, 200, 256, (0, 1, 2)), "small": (5, 15, 20, (0,)), "micro": (2, 3, 8, (0,))}

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = (
    report.Reference({"encoding": "coupling"}, 0.95, "Cho et al. 2024 (abstract: 1-30 -> 200 digits; value not checked)",
                     "trained on 1-30 digits, generalizes to 200-digit addition", approximate=True, length=200),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (coupling); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "cho2024.py")
  train_max, test_max, max_pos, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "cho2024"
  cfg.data.update(task="addition", format="pad+reverse_answer", tokenizer="char", positions="coupling",
                  loss="answer", max_len=128)
  cfg.data.position_options = {"max_pos": max_pos}
  cfg.data.train_lengths = {"len_0": (1, train_max), "len_1": (1, train_max)}
  cfg.eval.lengths = {"len_0": (1, test_max), "len_1": (1, test_max)}
  cfg.model.update(layers=6, d_model=512, heads=8, d_ff=2048, encoding="coupling", max_len=max_pos + 1)
  cfg.train.update(steps=50000, batch_size=256, lr=1e-4, warmup_steps=1000)
  cfg.eval.update(every=10000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=10000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, n_per_cell=4, eval_batch=900)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """encoding x seed (micro: coupling alone)."""
  size = sweep.budget(arg, "cho2024.py")
  _, _, max_pos, seeds = BUDGET[size]
  encodings = ENCODINGS[:1] if size == "micro" else ENCODINGS
  return sweep.product(sweep.encoding_axis(encodings, max_pos=max_pos),
                       sweep.field_axis("seed", "seed", seeds))
