"""Quickstart: a tiny transformer learns reversed addition on a laptop CPU in a few minutes.

  python -m arithlab.main --config=experiments/quickstart.py --workdir=runs/quickstart

Lee et al.'s reversed format (`$128+367=594$`, answer digits least-significant first), one
token per character, sequential position IDs, 2 layers of width 128, answer-only loss,
trained on 1-3-digit operands and evaluated on the 1..4 x 1..4 length grid (the 4-digit
row and column are out of distribution). Held-out in-distribution cells reach >= 99% exact
match: seeds 0, 1, 2 gave 100.0% at step 3000 (88.0/51.0/63.0% at 1000, 98.9/97.2/99.9% at
2000); the 4-digit cells stay at 0% (RoPE on sequential positions does not extrapolate).
About 390 s of CPU time on 2 cores. `:smoke` shrinks everything to a few steps (for tests).
"""

import ml_collections

from arithlab import config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """arg: None for the full run, "smoke" for a seconds-long run with the same structure."""
  cfg = config.default_config()
  cfg.name = "quickstart"
  cfg.data.update(task="addition", format="reverse_answer+dollar", tokenizer="char", positions="sequential",
                  loss="answer")
  cfg.data.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.eval.lengths = {"len_0": (1, 4), "len_1": (1, 4)}
  cfg.model.update(layers=2, d_model=128, heads=4, d_ff=512, encoding="rope", max_len=64)
  cfg.train.update(steps=3000, batch_size=128, lr=1e-3, warmup_steps=100, weight_decay=0.1, log_every=100)
  cfg.eval.update(every=1000, n_per_cell=100, batch_size=800)
  cfg.checkpoint.update(every=1000, keep=1, best_metric="val/exact_id")
  if arg == "smoke":
    cfg.model.update(d_model=32, d_ff=64)
    cfg.train.update(steps=6, batch_size=16, warmup_steps=2, log_every=2)
    cfg.eval.update(every=3, n_per_cell=8, batch_size=80, val_n_per_cell=8)
    cfg.data.train_lengths = {"len_0": (1, 2), "len_1": (1, 2)}
    cfg.eval.lengths = {"len_0": (1, 3), "len_1": (1, 3)}
    cfg.checkpoint.update(every=3)
  elif arg:
    raise ValueError(f"quickstart.py argument {arg!r} unknown; choose one of: smoke (or none)")
  return cfg
