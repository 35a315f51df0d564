"""McLeish et al. 2024, "Transformers Can Do Arithmetic with the Right Embeddings"
(docs/evaluation.md#mcleish2024): Abacus embeddings for addition length generalization, against
FIRE and NoPE, in a standard and a looped transformer.

  python -m arithlab.sweep --config=experiments/mcleish2024.py:small --workdir=runs/mcleish_small

Setting: operands and answer least-significant digit first, one token per digit, loss on the
answer; train on 1-20 digit operands, test up to 100 (both axes). Abacus IDs (the j-th digit
of each number gets j, plus one training offset k ~ U{0..100} per batch) index a learned table
added to the token embeddings; `fire` and `none` (NoPE) read sequential positions.
Full budget (our reading of the paper, unverified: the paper trains for one GPU-day): 16
layers x 1024, 16 heads, or a looped block of 8 layers applied twice with input injection;
50,000 steps of 256 at lr 1e-4; 100 problems per cell. Sweep:
architecture x encoding x 3 seeds. `:small` (2-core CPU): standard 2 layers x 128, train
1-5 digits, test to 15, offsets up to 20, 5,000 steps of 64, one seed.
"""

import ml_collections

from arithlab import config, report, sweep

ENCODINGS = ("abacus", "fire", "none")
ARCHITECTURES = {"standard": {}, "looped": {"model.looped": True, "model.layers": 8, "model.recurrences": 2,
                                            "model.test_recurrences": 2}}
BUDGET = {  # train max, test max, abacus max offset, seeds
    "full": (20, 100, 100, (0, 1, 2)), "small": (5, 15, 20, (0,)), "micro": (2, 3, 4, (0,))}

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE = (
    report.Reference({"encoding": "abacus", "architecture": "looped"}, 0.99, "McLeish et al. 2024 (abstract)",
                     "~99% exact match on 100-digit addition, trained on <= 20 digits", approximate=True,
                     length=100),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (standard transformer, Abacus); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "mcleish2024.py")
  train_max, test_max, _, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "mcleish2024"
  cfg.data.update(task="addition", format="reverse_operands+reverse_answer", tokenizer="char", positions="abacus",
                  loss="answer", max_len=4 * train_max + 16)
  cfg.data.position_options = {"max_offset": BUDGET[size][2]}
  cfg.data.train_lengths = {"len_0": (1, train_max), "len_1": (1, train_max)}
  cfg.eval.lengths = {"len_0": (1, test_max), "len_1": (1, test_max)}
  cfg.model.update(layers=16, d_model=1024, heads=16, d_ff=2048, encoding="abacus", max_len=256)
  cfg.train.update(steps=50000, batch_size=256, lr=1e-4, warmup_steps=1000)
  cfg.eval.update(every=10000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=10000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, steps=5000, n_per_cell=4, eval_batch=900)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """architecture x encoding x seed; small: the standard model only; micro: one Abacus point."""
  size = sweep.budget(arg, "mcleish2024.py")
  _, _, max_offset, seeds = BUDGET[size]
  architectures = ARCHITECTURES if size == "full" else {"standard": {}}
  encodings = ENCODINGS[:1] if size == "micro" else ENCODINGS
  return sweep.product(sweep.axis("architecture", architectures),
                       sweep.encoding_axis(encodings, max_offset=max_offset),
                       sweep.field_axis("seed", "seed", seeds))
