"""Zhu et al. 2025, TAPE ("Rethinking Addressing in Language Models via Contextualized
Equivariant Positional Encoding", docs/evaluation.md#zhu2025): position features carried and updated by
every layer, on addition length generalization, against RoPE, randomized RoPE, FIRE and NoPE.

  python -m arithlab.sweep --config=experiments/zhu2025.py:small --workdir=runs/zhu_small

Setting (after McLeish et al., whose arithmetic setup the TAPE paper follows; unverified):
operands and answer least-significant digit first, one token per digit, loss on the answer,
train on 1-20 digits, test to 40. TAPE's features start as RoPE's (cos, sin) of sequential
positions; arithlab's TAPE feeds the rotated q, k into the scores, unlike the published
arithmetic code (docs/encodings.md#tape), and its randomized baseline really is randomized (their
"RandPE" was plain RoPE). Deviation: no random position offset in training (the paper adds
one); the position rule here is sequential. Full budget (ours, unverified): 6 layers x 384,
6 heads, 30,000 steps of 256, 3 seeds. `:small` (2-core CPU): 2 layers x 128, train 1-5,
test to 15, 4,000 steps of 64, one seed.

Paper numbers: none of TAPE's arithmetic numbers were checked, so REFERENCE is empty; the
report then lists ours alone.
"""

import ml_collections

from arithlab import config, report, sweep

ENCODINGS = ("tape", "rope", "randomized:rope", "fire", "none")
BUDGET = {  # train max, test max, randomized L, seeds
    "full": (20, 40, 1024, (0, 1, 2)), "small": (5, 15, 256, (0,)), "micro": (2, 3, 64, (0,))}

REPORT = report.Spec(metric="eval/exact_ood")
REFERENCE: tuple[report.Reference, ...] = ()


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (TAPE); arg: None (full), "small", "micro"."""
  size = sweep.budget(arg, "zhu2025.py")
  train_max, test_max, _, _ = BUDGET[size]
  cfg = config.default_config()
  cfg.name = "zhu2025"
  cfg.data.update(task="addition", format="reverse_operands+reverse_answer", tokenizer="char",
                  positions="sequential", loss="answer", max_len=4 * train_max + 16)
  cfg.data.train_lengths = {"len_0": (1, train_max), "len_1": (1, train_max)}
  cfg.eval.lengths = {"len_0": (1, test_max), "len_1": (1, test_max)}
  cfg.model.update(layers=6, d_model=384, heads=6, d_ff=1536, encoding="tape")
  cfg.train.update(steps=30000, batch_size=256, lr=5e-4, warmup_steps=1000)
  cfg.eval.update(every=10000, n_per_cell=100, batch_size=1024)
  cfg.checkpoint.update(every=10000, keep=1, best_metric="val/exact_ood")
  if size == "small":
    sweep.small(cfg, n_per_cell=4, eval_batch=900)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (2, 3), "len_1": (2, 2)})
  return cfg


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """encoding x seed (micro: TAPE alone)."""
  size = sweep.budget(arg, "zhu2025.py")
  length, seeds = BUDGET[size][2:]
  encodings = ENCODINGS[:1] if size == "micro" else ENCODINGS
  return sweep.product(sweep.encoding_axis(encodings, randomized_len=length), sweep.field_axis("seed", "seed", seeds))
