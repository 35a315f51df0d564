"""Lee et al. 2023, "Teaching Arithmetic to Small Transformers" (docs/evaluation.md#lee2023): 3-digit
addition, plain vs reverse vs scratchpads, as a function of the number of training samples.

  python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=runs/lee2023_small

Full budget (the paper's): NanoGPT 6 layers x 384, 6 heads, dropout 0.2, learned positions
(`models.lee_config`); AdamW lr 1e-3, beta2 0.99, warmup 100, cosine to lr/10; batch 256 for
5,000 steps (scratchpads: batch 16 for 20,000 steps); loss on every character; operands of
1-3 digits with balanced carries. Sweep: format x samples N (500..40k) x 3 seeds.
`:small` (2-core CPU), chosen by the measured study in experiments/results/lee2023_recipe/:
Lee's architecture family (learned positions, biases, loss on every character) shrunk to 2
layers x 128 (4 heads, d_ff 512) without dropout, 5,000 steps of 128 (scratchpads 4,000 of
16), N in {1k, 3k, 10k}, seeds 0, 1, 2; the two `$` controls at N = 10k only. Dropout is off
because this 0.4M-parameter model underfits rather than overfits at this budget (with dropout
0.1 and batch 64 it reached 65% where the same set without dropout at batch 128 reached 92%;
see the study). A plain or reverse point takes about 10 minutes on a 2-core CPU shared by two
points; a detailed scratchpad (284-token rows) about an hour.

Formats (the sweep's `format` labels): plain `128+367=495`, reverse `$128+367=594$`, and
the delimiter controls plain$ `$128+367=495$` and reverse_no$ `128+367=594` (the `$` is its
own axis in the paper's finding), scratchpad_simple and scratchpad_detailed (data_gen).

Samples. Each N is a fixed training set of exactly N distinct problems (`data.train_set`,
see data_gen.train_set), drawn once per seed and then trained on in shuffled epochs, composed
as Lee's: every one-digit pair, 900N/10^4 pairs whose longer operand has two digits, the rest
with a three-digit longer operand, the number of carries (0-3) balanced by rejection to N/4
each. The set is drawn only from the training part of the hash split (data.holdout, the
default 1/8), so no training problem is ever an evaluation problem.

Deviations: the one-digit part holds the 87 one-digit pairs outside the held-out part, not all
100 (the other 13 are the evaluation cell (1, 1)); the three-digit part makes up the
difference. Within a part, lengths are uniform over its cells (e.g. (1, 3), (2, 3), (3, 3),
...) where Lee draws operands uniformly below 10^3 (so most of Lee's are 3 + 3 digits), and
each row's carries come from the balanced sampler before the rejection. Lee's sets may repeat
a problem; these never do. The test is the 1..3 x 1..3 length grid of held-out problems
(headline: exact match over those cells), not one set of 10,000 pairs.
"""

import ml_collections

from arithlab import config, models, report, sweep

FORMATS = {"plain": "plain", "reverse": "reverse_answer+dollar", "plain$": "dollar",
           "reverse_no$": "reverse_answer", "scratchpad_simple": "scratchpad_simple",
           "scratchpad_detailed": "scratchpad_detailed"}
CONTROLS = ("plain$", "reverse_no$")
SAMPLES = {"full": (500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 40000), "small": (1000, 3000, 10000),
           "micro": (1000,)}
SEEDS = {"full": (0, 1, 2), "small": (0, 1, 2), "micro": (0,)}
SCRATCHPAD_BUDGET = {"full": {"train.batch_size": 16, "train.steps": 20000},
                     "small": {"train.batch_size": 16, "train.steps": 4000}, "micro": {}}

REPORT = report.Spec(metric="eval/exact_id", x_axis="samples")
_FIG1 = "Lee et al. 2023, Figure 1 (right)"
REFERENCE = (
    report.Reference({"format": "plain"}, 0.86, _FIG1, "plain plateaus at ~85-87% from 10k samples on",
                     approximate=True, x=10000),
    report.Reference({"format": "reverse"}, 1.0, _FIG1, "~100% from ~2.5k samples on", approximate=True, x=2500),
    report.Reference({"format": "scratchpad_simple"}, 1.0, _FIG1, "~100% from ~2k samples on",
                     approximate=True, x=2000),
    report.Reference({"format": "scratchpad_detailed"}, 1.0, _FIG1, "~100% from ~1k samples on",
                     approximate=True, x=1000),
    report.Reference({"format": "plain$"}, 1.0, "Lee et al. 2023 (delimiter ablation; figure not checked)",
                     "plain with $ delimiters: ~100%", approximate=True),
    report.Reference({"format": "reverse_no$"}, 0.9, "Lee et al. 2023 (delimiter ablation; figure not checked)",
                     "reverse without $: ~90%", approximate=True),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The base run (format reverse, all samples); arg: None (the paper's budget), "small", "micro"."""
  size = sweep.budget(arg, "lee2023.py")
  cfg = config.default_config()
  cfg.name = "lee2023"
  cfg.data.update(task="addition", format=FORMATS["reverse"], tokenizer="char", positions="sequential", loss="all",
                  max_len=320)
  cfg.data.task_options = {"balanced_carries": True}
  cfg.data.train_lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.eval.lengths = {"len_0": (1, 3), "len_1": (1, 3)}
  cfg.model = models.lee_config(cfg.model.vocab_size)
  cfg.model.max_len = 320  # the detailed scratchpad of two 3-digit numbers is 284 tokens
  cfg.train.update(steps=5000, batch_size=256, lr=1e-3, warmup_steps=100, b2=0.99, end_lr_ratio=0.1)
  cfg.eval.update(every=1000, n_per_cell=100, batch_size=900, val_n_per_cell=100)
  cfg.checkpoint.update(every=1000, keep=1, best_metric="val/exact_id")
  if size == "small":
    cfg.model.update(layers=2, d_model=128, heads=4, d_ff=512, dropout=0.0)
    cfg.train.update(steps=5000, batch_size=128)
    cfg.eval.update(every=1000, n_per_cell=100, batch_size=450, val_n_per_cell=50)
  elif size == "micro":
    sweep.micro(cfg, {"len_0": (3, 3), "len_1": (3, 3)})
  return cfg


def composition(n: int) -> str:
  """Lee's parts of a set of n (data.train_set.parts): every one-digit pair, 900n/10^4 pairs
  whose longer operand has two digits; the rest (three digits) is implicit."""
  return f"100@1:1;{900 * n // 10**4}@1:2"


def samples_axis(values) -> list[sweep.Point]:
  """N training samples: a fixed, carry-balanced set of exactly N distinct problems."""
  return sweep.axis("samples", {n: {"data.train_set.size": n, "data.train_set.parts": composition(n),
                                    "data.train_set.balanced": True} for n in values})


def seeds_axis(values) -> list[sweep.Point]:
  """The run seed, which also draws the training set (each seed trains on its own set)."""
  return sweep.axis("seed", {s: {"seed": s, "data.train_set.seed": s} for s in values})


def get_sweep(arg: str | None = None) -> list[sweep.Point]:
  """format x samples x seed; the `$` controls only at the largest small-budget N (10k) when
  arg is "small"."""
  size = sweep.budget(arg, "lee2023.py")
  formats = {label: {"data.format": fmt, **(SCRATCHPAD_BUDGET[size] if fmt.startswith("scratchpad") else {})}
             for label, fmt in FORMATS.items()}
  if size == "micro":
    formats = {"reverse": formats["reverse"]}
  seeds = seeds_axis(SEEDS[size])
  if size != "small":
    return sweep.product(sweep.axis("format", formats), samples_axis(SAMPLES[size]), seeds)
  main = {k: v for k, v in formats.items() if k not in CONTROLS}
  controls = {k: formats[k] for k in CONTROLS}
  return (sweep.product(sweep.axis("format", main), samples_axis(SAMPLES[size]), seeds)
          + sweep.product(sweep.axis("format", controls), samples_axis(SAMPLES[size][-1:]), seeds))
