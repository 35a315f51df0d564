"""Awasthi & Gupta 2023, "Improving Length-Generalization in Transformers via Task Hinting"
(docs/evaluation.md#awasthi2023): sorting, trained on lists of at most 20 numbers, tested on 100, with and
without an auxiliary hint task trained jointly.

  python -m arithlab.sweep --config=experiments/awasthi2023.py:small --workdir=runs/awasthi_small

Setting: one decoder trained on a mixture: the sort task `S 5 3 9 1 > 1 3 5 9 E` (task token
0) and, with a hint, e.g. successor `H 5 3 9 1 ? 3 > 5 E` (task token 1) on half of every batch
(the share is ours, unverified); loss only on outputs. Lists of one-digit numbers, as in
docs/methods.md#sorting. Sweep (the `hint` labels): none, successor, and in the full budget
predecessor and count, x the softmax temperature (none, or log n scaling) x seeds.
Full budget (ours, not the paper's model; docs/evaluation.md#awasthi2023): 6 layers x 256, 8 heads,
RoPE, 20,000 steps of 128, test lengths 2-100, 3 seeds. `:small` (2-core CPU): 2 layers x 128,
lists of 2-10 numbers, test to 30, 4,000 steps of 64, one seed, no temperature axis. The
length plot is by list length (the `count` axis).
"""

import ml_collections

from arithlab import config, report, sweep

HINTS = {"none": "", "successor": "successor_hint:0.5", "predecessor": "predecessor_hint:0.5",
         "count": "count_hint:0.5"}
TEMPERATURES = {"none": {"model.temperature": "none"}, "log_n": {"model.temperature": "log_n"}}
BUDGET = {"full": (20, 100, (0, 1, 2)), "small": (10, 30, (0,)), "micro": (2, 3, (0,))}  # train, test, seeds

REPORT = report.Spec(metric="eval/exact_ood", length_axis="count")
REFERENCE = (
    report.Reference({"hint": "none"}, 0.01, "Awasthi & Gupta 2023 (table not checked)",
                     "standard training: < 1% exact match at length 100, trained on <= 20", approximate=True,
                     length=100),
    report.Reference({"hint": "successor"}, 0.92, "Awasthi & Gupta 2023 (table not checked)",
                     "successor hint: > 92% exact match at length 100, trained on <= 20", approximate=True,
                     length=100),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (successor hint); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "awasthi2023.py")
  train_max, test_max, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "awasthi2023"
  cfg.data.update(task="sorting", format="plain", tokenizer="char", positions="sequential", loss="answer",
                  hints=HINTS["successor"], max_len=4 * train_max + 16)
  cfg.data.train_lengths = {"count": (2, train_max), "digits": (1, 1)}
  cfg.eval.lengths = {"count": (2, test_max), "digits": (1, 1)}
  cfg.model.update(layers=6, d_model=256, heads=8, d_ff=1024, encoding="rope")
  cfg.train.update(steps=20000, batch_size=128, lr=5e-4, warmup_steps=500)
  cfg.eval.update(every=5000, n_per_cell=100, batch_size=1000)
  cfg.checkpoint.update(every=5000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, n_per_cell=32, eval_batch=960)
  elif size == "micro":
    sweep.micro(cfg, {"count": (2, 3), "digits": (1, 1)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """hint x temperature x seed (small: none and successor; micro: successor alone)."""
  size = sweep.budget(arg, "awasthi2023.py")
  hints = {"full": tuple(HINTS), "small": ("none", "successor"), "micro": ("successor",)}[size]
  temperatures = TEMPERATURES if size == "full" else {"none": TEMPERATURES["none"]}
  return sweep.product(sweep.axis("hint", {h: {"data.hints": HINTS[h]} for h in hints}),
                       sweep.axis("temperature", temperatures), sweep.field_axis("seed", "seed", BUDGET[size][2]))
