"""Data-generation throughput: the whole pipeline (`sample_batch`) beside a lean Python reference.

  python -m benchmarks.data_gen                   # the table (about a minute), from the repo root
  python -m benchmarks.data_gen --default-malloc  # the same with glibc's default heap trimming
  python -m benchmarks.data_gen --profile         # plus where the time goes, per function

One core: thread pools are limited to 1 before NumPy is imported and the process is pinned
to one CPU. Unless --default-malloc, glibc is told (mallopt) to keep freed memory instead of
returning it to the kernel after every call: by default every batch's arrays of a few hundred
KiB land in freshly mapped pages, and the page faults take about a third of the batch time. A
process-wide setting like this belongs in entry points (`arithlab.process`: this script,
arithlab.main and arithlab.sweep make it), never in library code; it speeds up the reference
too.

Each workload runs batch 1024 through `pipeline.sample_built` (lengths, problems, hash
split, format, tokenizer, BOS/EOS, position IDs, loss mask, padding), a new step per call,
and through a per-example Python reference written here (random ints, str, reversal, dict
lookup, writing the same padded tokens / positions / loss-mask arrays), in the same run.
Reported: examples/s and tokens/s (non-padding tokens), the best of WINDOWS timing windows of
WINDOW_SECONDS each, pipeline and reference windows interleaved.
"""

import os
import sys

# Run as a script, this file's folder would come first on sys.path and its name would shadow
# the `data_gen` package: drop it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
  sys.path.pop(0)

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from arithlab.process import keep_freed_memory  # noqa: E402
from data_gen import pipeline  # noqa: E402
from data_gen.tokenizers import BOS_ID, EOS_ID, NUM_SPECIAL, CHARS  # noqa: E402

BATCH = 1024
WINDOWS = 12
WINDOW_SECONDS = 0.2
VOCAB = {c: NUM_SPECIAL + i for i, c in enumerate(CHARS)}  # the `char` tokenizer's ids


def lean_batch(rng: random.Random, row: Callable[[random.Random], tuple[str, int]],
               width: int) -> dict[str, np.ndarray]:
  """BATCH examples, one Python call each: `row(rng)` gives (text, prompt length); then a dict
  lookup per character into padded arrays (BOS, chars, EOS), sequential positions, and the
  loss mask on the answer and EOS."""
  tokens = np.zeros((BATCH, width), np.int32)
  loss = np.zeros((BATCH, width), np.float32)
  for b in range(BATCH):
    s, split = row(rng)
    ids = [BOS_ID] + [VOCAB[c] for c in s] + [EOS_ID]
    tokens[b, :len(ids)] = ids
    loss[b, split + 1:len(ids)] = 1.0
  positions = np.where(tokens != 0, np.arange(width, dtype=np.int32), 0)
  return {"tokens": tokens, "positions": positions, "loss_mask": loss}


def _number(rng: random.Random, digits: int) -> int:
  return rng.randint(10 ** (digits - 1), 10**digits - 1)


def reversed_addition_row(rng: random.Random, len_a: int = 20, len_b: int = 20) -> tuple[str, int]:
  a, b = _number(rng, len_a), _number(rng, len_b)
  prompt = f"${a}+{b}="
  return prompt + str(a + b)[::-1] + "$", len(prompt)


def mixed_lengths_row(rng: random.Random) -> tuple[str, int]:
  return reversed_addition_row(rng, rng.randint(1, 20), rng.randint(1, 20))


def scratchpad_row(rng: random.Random) -> tuple[str, int]:
  a, b = _number(rng, 20), _number(rng, 20)
  prompt = f"Input:\n{a}+{b}\nTarget:\n"
  steps, carry, x, y = [], 0, a, b
  while x or y:
    s = x % 10 + y % 10 + carry
    carry = s // 10
    steps.append(f"A->{s % 10} , C->{carry}")
    x, y = x // 10, y // 10
  return prompt + "\n".join(steps) + f".\n{a + b}", len(prompt)


def multiplication_row(rng: random.Random) -> tuple[str, int]:
  a, b = _number(rng, 20), _number(rng, 20)
  prompt = f"${a}*{b}="
  return prompt + str(a * b)[::-1] + "$", len(prompt)


def sorting_row(rng: random.Random) -> tuple[str, int]:
  items = [_number(rng, 3) for _ in range(20)]
  prompt = "S " + " ".join(map(str, items)) + " > "
  return prompt + " ".join(map(str, sorted(items))) + " E", len(prompt)


def counting_row(rng: random.Random) -> tuple[str, int]:
  a = _number(rng, 3)
  prompt = f"N {a} {a + 19} > "
  return prompt + " ".join(map(str, range(a, a + 20))) + " E", len(prompt)


def config(task: str, fmt: str, lengths: dict[str, tuple[int, int]]):
  cfg = pipeline.default_data_config()
  cfg.task, cfg.format, cfg.train_lengths, cfg.max_len = task, fmt, lengths, 512
  return cfg


WORKLOADS = (
    ("20-digit addition, reverse_answer+dollar",
     config("addition", "reverse_answer+dollar", {"len_0": (20, 20), "len_1": (20, 20)}),
     reversed_addition_row, 72),
    ("1..20-digit addition (lengths drawn per row), reverse_answer+dollar",
     config("addition", "reverse_answer+dollar", {"len_0": (1, 20), "len_1": (1, 20)}), mixed_lengths_row, 72),
    ("20-digit addition, scratchpad_simple",
     config("addition", "scratchpad_simple", {"len_0": (20, 20), "len_1": (20, 20)}), scratchpad_row, 328),
    ("20x20 multiplication, reverse_answer+dollar",
     config("multiplication", "reverse_answer+dollar", {"len_a": (20, 20), "len_b": (20, 20)}),
     multiplication_row, 88),
    ("sorting 20 x 3-digit, plain", config("sorting", "plain", {"count": (20, 20), "digits": (3, 3)}),
     sorting_row, 176),
    ("counting_successor 20 from 3-digit, plain",
     config("counting_successor", "plain", {"count": (20, 20), "digits": (3, 3)}), counting_row, 120),
)


def _seconds_per_call(make: Callable[[int], dict[str, np.ndarray]], first_step: int) -> float:
  calls, start = 0, time.perf_counter()
  while (elapsed := time.perf_counter() - start) < WINDOW_SECONDS:
    make(first_step + calls)
    calls += 1
  return elapsed / calls


def throughput(makers: Sequence[Callable[[int], dict[str, np.ndarray]]]) -> list[tuple[float, float]]:
  """(examples/s, tokens/s) of each maker: the best of WINDOWS timing windows, the makers'
  windows interleaved so that every maker sees the same machine load."""
  tokens = [int(np.count_nonzero(make(0)["tokens"])) for make in makers]
  best = [float("inf")] * len(makers)
  for window in range(WINDOWS):
    for i, make in enumerate(makers):
      best[i] = min(best[i], _seconds_per_call(make, 1 + window * 10**6))
  return [(BATCH / t, n / t) for t, n in zip(best, tokens)]


def pipeline_maker(cfg) -> Callable[[int], dict[str, np.ndarray]]:
  built = pipeline.build(cfg)
  return lambda step: pipeline.sample_built(built, seed=0, step=step, process_index=0, process_count=1,
                                            batch_size=BATCH)


def reference_maker(row, width: int) -> Callable[[int], dict[str, np.ndarray]]:
  rng = random.Random(0)
  return lambda step: lean_batch(rng, row, width)


def profile(cfg, calls: int = 200) -> None:
  """Prints the data_gen functions where sample_built spends its time (cProfile, cumulative)."""
  make = pipeline_maker(cfg)
  profiler = cProfile.Profile()
  profiler.enable()
  for step in range(calls):
    make(step)
  profiler.disable()
  pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"data_gen[/\\](?!registry)", 20)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--profile", action="store_true", help="also profile each pipeline workload")
  parser.add_argument("--default-malloc", action="store_true",
                      help="leave glibc's heap trimming as it is (every batch then page-faults)")
  args = parser.parse_args()
  malloc = "default malloc" if args.default_malloc or not keep_freed_memory() else "malloc keeps freed memory"
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  print(f"# {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}  "
        f"python {platform.python_version()}  numpy {np.__version__}  batch {BATCH}, one core, {malloc}")
  print("| workload | pipeline ex/s | pipeline tok/s | reference ex/s | reference tok/s | speed-up |")
  print("|---|---:|---:|---:|---:|---:|")
  for name, cfg, row, width in WORKLOADS:
    (ex, tok), (ref_ex, ref_tok) = throughput([pipeline_maker(cfg), reference_maker(row, width)])
    print(f"| {name} | {ex:,.0f} | {tok:,.0f} | {ref_ex:,.0f} | {ref_tok:,.0f} | {ex / ref_ex:.1f}x |",
          flush=True)
  if args.profile:
    for name, cfg, _, _ in WORKLOADS:
      print(f"\n## profile: {name}")
      profile(cfg)


if __name__ == "__main__":
  main()
