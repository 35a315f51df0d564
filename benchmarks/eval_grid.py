"""Seconds for a whole length-grid evaluation: 1..N x 1..N cells of reversed addition at n examples each.

  python -m benchmarks.eval_grid                         # N = 100, n = 100: 1,000,000 examples
  python -m benchmarks.eval_grid --cells=0 --chunk=512   # every cell, no extrapolation (a GPU)
  python -m benchmarks.eval_grid --smoke                 # seconds; what the tests run

The evaluation of the training loop, step for step: `data_gen.pipeline.eval_grid` draws the
cells, `arithlab.train.evaluate.evaluate` stacks them into one batch (prompts left-padded,
answers right-padded to the widest cell), decodes it in chunks of `--chunk` rows with the
jitted KV-cache decoder of `arithlab.train.decode` and scores every cell. The model is Lee's
6L-6H-384, untrained (decoding always runs every answer slot, so speed does not depend on
the weights).

On a CPU the full grid takes hours, so by default the script measures a sub-grid of `--cells`
cells drawn at random from the full grid, always including the widest cell (N, N): the stacked
batch then has exactly the full grid's padded shape, so every chunk costs what a chunk of the
full grid costs. The full-grid figure is EXTRAPOLATED: generation time per cell x cells, and
evaluation time per chunk x the full grid's chunks, plus the one compilation. The table says
which rows are measured and which extrapolated.
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
SUB_GRID_CELLS = {"gpu": 0, "cpu": 6}  # 0: the whole grid


def sub_grid(full: Sequence[tuple[int, ...]], count: int, seed: int = 0) -> list[tuple[int, ...]]:
  """`count` cells of `full` drawn at random, always including the last (widest) one; every
  cell when count is 0 or at least len(full)."""
  if count <= 0 or count >= len(full):
    return list(full)
  picked = np.random.default_rng(seed).choice(len(full) - 1, count - 1, replace=False)
  return [full[i] for i in sorted(picked)] + [full[-1]]


def padded_share(cells: dict) -> float:
  """The share of the stacked batch's prompt + answer slots that each cell's own width needs
  (1.0: no padding waste from stacking cells of different lengths)."""
  widest = max(b["prompt"].shape[1] for b in cells.values()) + max(b["answer"].shape[1] for b in cells.values())
  return float(np.mean([(b["prompt"].shape[1] + b["answer"].shape[1]) / widest for b in cells.values()]))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--max-len", type=int, default=100, help="the grid is 1..N x 1..N operand digits")
  parser.add_argument("--n-per-cell", type=int, default=100, help="examples per cell")
  parser.add_argument("--cells", type=int, help="sub-grid cells to measure (0: all; default per backend)")
  parser.add_argument("--chunk", type=int, help="rows per decoder call (eval.batch_size)")
  parser.add_argument("--model", default="lee", help="lee, shen or smoke")
  parser.add_argument("--dtype", default="float32", help="compute dtype: float32 or bfloat16")
  parser.add_argument("--cores", type=int, help="pin to this many CPU cores (0: all; default: 1, or all when "
                      "a JAX GPU plugin is installed)")
  parser.add_argument("--smoke", action="store_true", help="a tiny model on the 1..3 x 1..3 grid, 2 per cell")
  args = parser.parse_args(argv)
  if args.smoke:
    args.max_len, args.n_per_cell, args.cells, args.chunk, args.model = 3, 2, 4, 4, "smoke"
  return args


def main(argv: Sequence[str] | None = None) -> list[list[str]]:
  """Prints the environment and the markdown table; returns the table rows."""
  args = parse(argv)
  pinned = common.pin_cores(args.cores)
  backend = "gpu" if jax.default_backend() == "gpu" else "cpu"
  chunk = args.chunk or CHUNK[backend]
  data_cfg = pipeline.default_data_config()
  full = grid_lib.cells([(1, args.max_len), (1, args.max_len)])
  cells = sub_grid(full, SUB_GRID_CELLS[backend] if args.cells is None else args.cells)
  print(f"# {common.environment_line()}; {pinned}")

  start = time.perf_counter()
  grid = pipeline.eval_grid(data_cfg, cells, args.n_per_cell, seed=2024)
  generate_s = time.perf_counter() - start
  batch, _ = evaluate_lib.stack_cells(grid)
  cfg = common.model_config(args.model, args.dtype)
  cfg.max_len = max(cfg.max_len, batch["prompt"].shape[1] + batch["answer"].shape[1])
  device_mesh, model_def, params, rng_counts, _ = common.build_split(cfg)
  rules = cfg.logical_rules
  decoder = decode_lib.make_decode(model_def, device_mesh, rules)

  def decode(part):
    return decoder(params, rng_counts, mesh_lib.replicated_batch(part, device_mesh, rules))

  first = {k: v[np.arange(chunk) % v.shape[0]] for k, v in batch.items()}
  compile_s = common.seconds(lambda: jax.block_until_ready(decode(first)))
  source = pipeline.build(data_cfg).sources[0]
  start = time.perf_counter()
  result = evaluate_lib.evaluate(decode, grid, chunk=chunk, axes=source.task.length_axes, train_ranges=source.ranges,
                                 step=0)
  evaluate_s = time.perf_counter() - start
  rows = int(result.count_C.sum())
  chunks = math.ceil(rows / chunk)
  full_rows = len(full) * args.n_per_cell
  full_chunks = math.ceil(full_rows / chunk)
  full_generate_s = generate_s / len(cells) * len(full)
  full_evaluate_s = evaluate_s / chunks * full_chunks
  shape = f"{batch['prompt'].shape[1]} + {batch['answer'].shape[1]}"
  name = f"{args.model} {args.dtype}"
  measured = "measured" if len(cells) == len(full) else "measured (sub-grid)"
  table = [
      [measured, name, f"{len(cells)} cells", f"{rows:,}", shape, str(chunk), f"{generate_s:.1f}", f"{compile_s:.1f}",
       f"{evaluate_s:.1f}", f"{generate_s + compile_s + evaluate_s:.1f}", f"{rows / evaluate_s:,.1f}"],
  ]
  if len(cells) != len(full):
    total = full_generate_s + compile_s + full_evaluate_s
    table.append(["EXTRAPOLATED full grid", name, f"1..{args.max_len} x 1..{args.max_len} = {len(full):,} cells",
                  f"{full_rows:,}", shape, str(chunk), f"{full_generate_s:,.0f}", f"{compile_s:.1f}",
                  f"{full_evaluate_s:,.0f}", f"{total:,.0f} ({total / 3600:.1f} h)", f"{rows / evaluate_s:,.1f}"])
  print(common.markdown_header(HEADER))
  print("\n".join(common.markdown_row(row) for row in table))
  print(f"# cells measured: {cells if len(cells) <= 12 else f'{len(cells)} cells'}; each cell's own prompt + answer "
        f"width is {100 * padded_share(grid):.0f}% of the stacked width on average (the rest is padding)")
  return table


HEADER = ("run", "model", "grid", "examples", "padded prompt + answer", "chunk", "generate s", "compile s",
          "decode + score s", "total s", "examples/s (decode)")


if __name__ == "__main__":
  main()
