"""Singh & Strouse 2024, "Tokenization counts" (docs/evaluation.md#singh2024), as a from-scratch analogue:
addition with numbers cut into k-digit chunks from the left (L2R, GPT-3.5 style) or from the
right (R2L, as commas force), plain format (most significant digit first).

  python -m arithlab.sweep --config=experiments/singh2024.py:small --workdir=runs/singh_small

The paper measures GPT-3.5 (8-shot, 7-9 digit addends); here small models learn addition from
scratch under each tokenizer (the sweep's `tokenizer` labels are data_gen tokenizer names:
char, chunk{2,3}_{l2r,r2l}, comma = chunk3_r2l with a separator token). The paper's numbers
are for the model it probed, listed for the direction of the effect only. Each point sets
model.vocab_size to its tokenizer's vocabulary. Deviation: the paper reports problems whose
answer is longer than both addends separately; the eval grid is by operand lengths, so those
numbers are listed but not computed here.
Full budget (ours): 6 layers x 384, 6 heads, operands of 1-9 digits (train and test), 20,000
steps of 256, 3 seeds. `:small` (2-core CPU): 2 layers x 128, operands of 1-7 digits, 4,000
steps of 64, one seed, tokenizers chunk3_l2r, chunk3_r2l, comma and char.
"""

import ml_collections

from arithlab import config, report, sweep
from data_gen import tokenizers

TOKENIZERS = {"full": ("char", "chunk2_l2r", "chunk2_r2l", "chunk3_l2r", "chunk3_r2l", "comma"),
              "small": ("chunk3_l2r", "chunk3_r2l", "comma", "char"), "micro": ("chunk3_l2r",)}
BUDGET = {"full": (9, (0, 1, 2)), "small": (7, (0,)), "micro": (2, (0,))}  # operand digits, seeds

REPORT = report.Spec(metric="eval/exact_id")
_PAPER = "Singh & Strouse 2024 (GPT-3.5, 8-shot; figure not checked)"
REFERENCE = (
    report.Reference({"tokenizer": "chunk3_l2r"}, 0.744, _PAPER, "L2R 3-digit chunks, 7-9 digit addends"),
    report.Reference({"tokenizer": "comma"}, 0.978, _PAPER, "R2L forced by commas, 7-9 digit addends"),
    report.Reference({"tokenizer": "chunk3_l2r"}, 0.0825, _PAPER, "L2R when the answer is longer than both addends"),
    report.Reference({"tokenizer": "comma"}, 0.985, _PAPER, "R2L when the answer is longer than both addends"),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (chunk3_l2r); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "singh2024.py")
  digits = BUDGET[size][0]
  cfg = config.default_config()
  cfg.name = "singh2024"
  cfg.data.update(task="addition", format="plain", tokenizer="chunk3_l2r", positions="sequential", loss="answer",
                  max_len=64)
  cfg.data.train_lengths = {"len_0": (1, digits), "len_1": (1, digits)}
  cfg.eval.lengths = {"len_0": (1, digits), "len_1": (1, digits)}
  cfg.model.update(layers=6, d_model=384, heads=6, d_ff=1536, encoding="rope",
                   vocab_size=tokenizers.TOKENIZERS.get("chunk3_l2r").vocab_size)
  cfg.train.update(steps=20000, batch_size=256, lr=5e-4, warmup_steps=500)
  cfg.eval.update(every=5000, n_per_cell=100, batch_size=1000)
  cfg.checkpoint.update(every=5000, keep=1, best_metric="val/exact_id")
  if size == "small":
    sweep.small(cfg, n_per_cell=30, eval_batch=735)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (2, 2), "len_1": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """tokenizer x seed."""
  size = sweep.budget(arg, "singh2024.py")
  axis = {name: {"data.tokenizer": name, "model.vocab_size": tokenizers.TOKENIZERS.get(name).vocab_size}
          for name in TOKENIZERS[size]}
  return sweep.product(sweep.axis("tokenizer", axis), sweep.field_axis("seed", "seed", BUDGET[size][1]))
