"""Seconds for a whole length-grid evaluation: 1..N x 1..N cells of reversed addition at n examples each,
decoded as one padded shape and in width buckets, side by side.

  python -m benchmarks.eval_grid                                   # a GPU: N = 100, n = 100 (1,000,000 examples)
  python -m benchmarks.eval_grid --max-len=16 --n-per-cell=8       # the CPU default
  python -m benchmarks.eval_grid --smoke                           # seconds; what the tests run

The evaluation of the training loop, step for step: `data_gen.pipeline.eval_grid` draws the
cells, `arithlab.train.evaluate.evaluate` decodes them with the jitted KV-cache decoder of
`arithlab.train.decode` in chunks of `--chunk` rows and scores every cell. Two ways in the same
run, on the same cells: "one shape" stacks every cell into one batch padded to the widest cell
(every row decodes the widest answer's steps; one compilation), "buckets" decodes groups of
cells whose widths round up to the same multiple of `evaluate.BUCKET` (one compilation per
group; short cells decode only the steps their group needs). Times include the compilations.
The model is Lee's 6L-6H-384, untrained (decoding always runs every answer slot, so speed
does not depend on the weights); both ways must produce the same scores.
"""

import argparse
import math
import time
from typing import Sequence

import jax
import numpy as np

from arithlab.train import decode as decode_lib
from arithlab.train import evaluate as evaluate_lib
from arithlab.train import mesh as mesh_lib
from benchmarks import common
from data_gen import grid as grid_lib
from data_gen import pipeline

CHUNK = {"gpu": 512, "cpu": 32}  # rows per decoder call; the GPU default is eval.batch_size's
GRID = {"gpu": (100, 100), "cpu": (16, 8)}  # N, n per cell


def padded_share(cells: dict, groups: dict[tuple[int, int], list[int]]) -> float:
  """The mean share of a row's decoded prompt + answer slots that its own cell needs."""
  batches = list(cells.values())
  return float(np.mean([(batches[i]["prompt"].shape[1] + batches[i]["answer"].shape[1]) / (width_p + width_a)
                        for (width_p, width_a), members in groups.items() for i in members]))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--max-len", type=int, help="the grid is 1..N x 1..N operand digits (default per backend)")
  parser.add_argument("--n-per-cell", type=int, help="examples per cell (default per backend)")
  parser.add_argument("--chunk", type=int, help="rows per decoder call (eval.batch_size)")
  parser.add_argument("--model", default="lee", help="lee, shen or smoke")
  parser.add_argument("--dtype", default="float32", help="compute dtype: float32 or bfloat16")
  parser.add_argument("--cores", type=int, help="pin to this many CPU cores (0: all; default: 1, or all when "
                      "a JAX GPU plugin is installed)")
  parser.add_argument("--smoke", action="store_true", help="a tiny model on the 1..3 x 1..3 grid, 2 per cell")
  args = parser.parse_args(argv)
  if args.smoke:
    args.max_len, args.n_per_cell, args.chunk, args.model = 3, 2, 4, "smoke"
  return args


def main(argv: Sequence[str] | None = None) -> list[list[str]]:
  """Prints the environment and the markdown table (one row per way); returns the table rows."""
  args = parse(argv)
  pinned = common.pin_cores(args.cores)
  backend = "gpu" if jax.default_backend() == "gpu" else "cpu"
  chunk = args.chunk or CHUNK[backend]
  max_len, n_per_cell = args.max_len or GRID[backend][0], args.n_per_cell or GRID[backend][1]
  data_cfg = pipeline.default_data_config()
  print(f"# {common.environment_line()}; {pinned}")

  start = time.perf_counter()
  grid = pipeline.eval_grid(data_cfg, grid_lib.cells([(1, max_len), (1, max_len)]), n_per_cell, seed=2024)
  generate_s = time.perf_counter() - start
  widest, _ = evaluate_lib.stack_cells(grid)
  cfg = common.model_config(args.model, args.dtype)
  cfg.max_len = max(cfg.max_len, widest["prompt"].shape[1] + widest["answer"].shape[1])
  device_mesh, model_def, params, rng_counts, _ = common.build_split(cfg)
  rules = cfg.logical_rules
  decoder = decode_lib.make_decode(model_def, device_mesh, rules)

  def decode(part):
    return decoder(params, rng_counts, mesh_lib.replicated_batch(part, device_mesh, rules))

  source = pipeline.build(data_cfg).sources[0]
  rows = sum(b["prompt"].shape[0] for b in grid.values())
  table, scores, seconds = [], [], []
  for way, bucket in (("one shape", None), ("buckets", evaluate_lib.BUCKET)):
    groups = evaluate_lib.bucket_cells(grid, bucket)
    start = time.perf_counter()
    result = evaluate_lib.evaluate(decode, grid, chunk=chunk, axes=source.task.length_axes,
                                   train_ranges=source.ranges, step=0, bucket=bucket)
    evaluate_s = time.perf_counter() - start
    scores.append(result.exact_C)
    seconds.append(evaluate_s)
    table.append([way, f"{args.model} {args.dtype}", f"1..{max_len} x 1..{max_len}", f"{rows:,}", str(len(groups)),
                  f"{100 * padded_share(grid, groups):.0f}%", str(chunk), f"{generate_s:.1f}",
                  f"{evaluate_s:.1f}", f"{rows / evaluate_s:,.1f}"])
  table[0].append("1.00x")
  table[1].append(f"{seconds[0] / seconds[1]:.2f}x")
  print(common.markdown_header(HEADER))
  print("\n".join(common.markdown_row(row) for row in table))
  print(f"# same exact match per cell both ways: {bool(np.array_equal(scores[0], scores[1]))}")
  return table


HEADER = ("way", "model", "grid", "examples", "compiled shapes", "slots a row needs", "chunk", "generate s",
          "compile + decode + score s", "examples/s", "speed-up")


if __name__ == "__main__":
  main()
