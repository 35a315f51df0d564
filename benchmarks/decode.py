"""Greedy decoding: arithlab's KV-cache decoder beside decoding by recomputing the whole sequence.

  python -m benchmarks.decode                      # Lee's 6L-6H-384 at 20- and 100-digit answers
  python -m benchmarks.decode --digits=100 --batch=64 --dtype=bfloat16
  python -m benchmarks.decode --smoke              # seconds; what the tests run

Both decoders are the jitted ones of `arithlab.train.decode.make_decode` (`cached=True`: one
prefill of the prompt, then one token a step through the cache; `cached=False`: the uncached
reference, a full forward pass over prompt + answer slots for every generated token). The
batch is a real eval cell of `data_gen.pipeline.eval_batch` (reversed addition, one token per
character, `$a+b=` then the reversed sum, `$` and EOS): operands of D digits give answers of
D or D + 1 digits and A = D + 3 decoded slots. The model is untrained (decoding always runs
all A slots, so the speed does not depend on the weights), with a learned position table
widened to cover prompt + answer. Both are compiled first, then timed in alternation; the
table gives the median seconds per call and checks that both produced the same tokens.
"""

import argparse
from typing import Sequence

import jax
import numpy as np

from arithlab.train import decode as decode_lib
from arithlab.train import mesh as mesh_lib
from benchmarks import common
from data_gen import pipeline

# Rows decoded per call, per answer length: the GPU default is eval.batch_size's default (512);
# on one CPU core the recomputing reference at 100 digits costs tens of seconds a row, hence the
# small batch (which favours the recomputation: the cached decoder's per-step overhead weighs more).
BATCH = {"gpu": {20: 512, 100: 512}, "cpu": {20: 16, 100: 2}}
ROUNDS = {"gpu": 10, "cpu": 3}


def measure(model: str, dtype: str, digits: int, batch: int, rounds: int) -> list[str]:
  """One table row: cached and recomputing examples/s at D-digit operands, and their ratio."""
  cells = pipeline.eval_batch(pipeline.default_data_config(), (digits, digits), batch, seed=0)
  prompt_len, answer_len = cells["prompt"].shape[1], cells["answer"].shape[1]
  cfg = common.model_config(model, dtype)
  cfg.max_len = max(cfg.max_len, prompt_len + answer_len)
  device_mesh, model_def, params, rng_counts, n_params = common.build_split(cfg)
  rules = cfg.logical_rules
  device_batch = mesh_lib.replicated_batch(cells, device_mesh, rules)
  outputs = {}

  def runner(cached: bool):
    decode = decode_lib.make_decode(model_def, device_mesh, rules, cached=cached)

    def run() -> None:
      outputs[cached] = jax.block_until_ready(decode(params, rng_counts, device_batch))

    run()  # compile
    return run

  cached_s, uncached_s = common.interleaved_medians([runner(True), runner(False)], rounds)
  same = np.array_equal(np.asarray(outputs[True]), np.asarray(outputs[False]))
  return [model, dtype, f"{n_params / 1e6:.1f}M", f"{digits}+{digits}", f"{prompt_len} + {answer_len}", str(batch),
          f"{batch / cached_s:,.1f}", f"{batch * answer_len / cached_s:,.0f}", f"{batch / uncached_s:,.2f}",
          f"{uncached_s / cached_s:.1f}x", "yes" if same else "NO", str(rounds)]


HEADER = ("model", "dtype", "params", "operand digits", "prompt + answer slots", "batch", "KV cache ex/s",
          "KV cache tokens/s", "recompute ex/s", "speed-up", "same tokens", "timed calls")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", default="lee", help="lee, shen or smoke")
  parser.add_argument("--dtype", default="float32", help="compute dtype: float32 or bfloat16")
  parser.add_argument("--digits", default="20,100", help="comma list of operand lengths D (answers D or D+1)")
  parser.add_argument("--batch", type=int, help="rows per call (default per answer length and backend)")
  parser.add_argument("--rounds", type=int, help="timed calls per decoder (median reported)")
  parser.add_argument("--cores", type=int, help="pin to this many CPU cores (0: all; default: 1, or all when "
                      "a JAX GPU plugin is installed)")
  parser.add_argument("--smoke", action="store_true", help="a tiny model at 3-digit operands, batch 2")
  args = parser.parse_args(argv)
  if args.smoke:
    args.model, args.digits, args.batch, args.rounds = "smoke", "3", 2, 1
  return args


def main(argv: Sequence[str] | None = None) -> list[list[str]]:
  """Prints the environment and the markdown table; returns the table rows."""
  args = parse(argv)
  pinned = common.pin_cores(args.cores)
  backend = "gpu" if jax.default_backend() == "gpu" else "cpu"
  print(f"# {common.environment_line()}; {pinned}")
  print(common.markdown_header(HEADER), flush=True)
  table = []
  for digits in (int(d) for d in args.digits.split(",")):
    batch = args.batch or BATCH[backend].get(digits, BATCH[backend][20])
    table.append(measure(args.model, args.dtype, digits, batch, args.rounds or ROUNDS[backend]))
    print(common.markdown_row(table[-1]), flush=True)
  return table


if __name__ == "__main__":
  main()
