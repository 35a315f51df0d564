"""Zhou et al. 2024, "Transformers Can Achieve Length Generalization But Not Robustly"
(docs/evaluation.md#zhou2024): FIRE + randomized positions + reversed format + index hints, trained on
1-40 digit addition, tested to 100; the result is sensitive to the seed.

  python -m arithlab.sweep --config=experiments/zhou2024.py:small --workdir=runs/zhou_small

Sweep: format (reverse: operands and answer least-significant digit first; reverse+hints: the
same with an index letter before every digit, `a1b2c3+a4b5c6=...`) x encoding (fire,
randomized:fire over positions 0..L-1) x seeds; the report gives the median and the best seed,
the paper's point being their spread.
Full budget: trained on 1-40 digits and tested on 1..100 x 1..100, as the paper does (past 52
digits an index hint has two letters, `...Y0Z0aa0ab1`: data_gen.text.index_hint); model and
steps are our reading, unverified: 6 layers x 512, 8 heads, 50,000 steps of 128, L = 2048, 10
seeds. `:small` (2-core CPU): 2 layers x 128, train 1-8, test to 20, L = 256, 4,000 steps of
64, two seeds.
"""

import ml_collections

from arithlab import config, report, sweep

FORMATS = {"reverse": "reverse_operands+reverse_answer", "reverse+hints": "reverse_operands+reverse_answer+index_hints"}
ENCODINGS = ("fire", "randomized:fire")
BUDGET = {  # train max, test max, randomized L, seeds
    "full": (40, 100, 2048, tuple(range(10))), "small": (8, 20, 256, (0, 1)), "micro": (2, 3, 64, (0,))}

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = (
    report.Reference({"format": "reverse+hints", "encoding": "randomized:fire"}, 0.98,
                     "Zhou et al. 2024 (abstract, from memory: value not checked)",
                     "best seed, train 40 -> test 100 digits; other seeds far lower", approximate=True, length=100),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (reverse+hints, randomized FIRE); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "zhou2024.py")
  train_max, test_max, length, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "zhou2024"
  cfg.data.update(task="addition", format=FORMATS["reverse+hints"], tokenizer="char", positions="randomized",
                  loss="answer", max_len=6 * train_max + 16)
  cfg.data.position_options = {"L": length}
  cfg.data.train_lengths = {"len_0": (1, train_max), "len_1": (1, train_max)}
  cfg.eval.lengths = {"len_0": (1, test_max), "len_1": (1, test_max)}
  cfg.model.update(layers=6, d_model=512, heads=8, d_ff=2048, encoding="randomized:fire", randomized_max_len=length)
  cfg.train.update(steps=50000, batch_size=128, lr=5e-4, warmup_steps=1000)
  cfg.eval.update(every=10000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=10000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, n_per_cell=4, eval_batch=1600)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """format x encoding x seed (micro: the base point)."""
  size = sweep.budget(arg, "zhou2024.py")
  length, seeds = BUDGET[size][2:]
  formats = {k: {"data.format": v} for k, v in FORMATS.items()}
  encodings = ENCODINGS
  if size == "micro":
    formats, encodings = {"reverse+hints": formats["reverse+hints"]}, ENCODINGS[1:]
  return sweep.product(sweep.axis("format", formats), sweep.encoding_axis(encodings, randomized_len=length),
                       sweep.field_axis("seed", "seed", seeds))
