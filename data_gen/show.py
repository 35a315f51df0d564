"""Prints training examples as the model sees them: decoded text, tokens, position IDs, loss.

  python -m data_gen.show --task=addition --format=reverse_answer+dollar --tokenizer=chunk3_r2l -n 5
  python -m data_gen.show --task=sorting --format=plain --positions=abacus --lengths=count=2:6,digits=1:3
  python -m data_gen.show --hints=successor_hint:0.5 --task=sorting --lengths=2:5

Every flag is a field of `pipeline.default_data_config()`; `--lengths` sets the training
ranges: "1:8" for every length axis of the task, or "axis=min:max,axis=min:max".
`--position_options` takes "key=value,..." with integer or word values (e.g. max_pos=64,
max_offset=20,offset_per=example).
"""

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from data_gen import pipeline, tasks

WRAP = 100  # characters per printed line of token columns


def _range(text: str) -> tuple[int, int]:
  lo, _, hi = text.partition(":")
  return int(lo), int(hi or lo)


def parse_lengths(spec: str, axes: Sequence[str]) -> dict[str, tuple[int, int]]:
  """"1:8" -> every axis 1..8; "count=2:6,digits=1:3" -> per axis (the rest default to 1:8)."""
  if "=" not in spec:
    return {axis: _range(spec) for axis in axes}
  ranges = {axis: (1, 8) for axis in axes}
  for entry in spec.split(","):
    axis, _, value = entry.partition("=")
    if axis not in ranges:
      raise ValueError(f"--lengths axis {axis!r} unknown; the task's axes are {list(axes)}")
    ranges[axis] = _range(value)
  return ranges


def parse_options(spec: str) -> dict[str, int | str]:
  """"max_pos=64,offset_per=batch" -> {"max_pos": 64, "offset_per": "batch"} (digits: an int)."""
  return {key: int(value) if value.lstrip("-").isdigit() else value
          for key, _, value in (e.partition("=") for e in spec.split(",") if e)}


def config_from_args(args: argparse.Namespace):
  """The data config the flags describe."""
  cfg = pipeline.default_data_config()
  cfg.task, cfg.format, cfg.tokenizer = args.task, args.format, args.tokenizer
  cfg.positions, cfg.loss, cfg.hints = args.positions, args.loss, args.hints
  cfg.task_options = json.loads(args.task_options)
  cfg.position_options = parse_options(args.position_options)
  cfg.train_lengths = parse_lengths(args.lengths, tasks.build(args.task, **cfg.task_options).length_axes)
  cfg.max_len = args.max_len
  return cfg


def columns(pieces: Sequence[str], rows: dict[str, Sequence]) -> list[str]:
  """Aligned, wrapped columns: one per token, a line per row name (token, pos, loss)."""
  cells = {"token": ["\u2423" if p == " " else repr(p)[1:-1] for p in pieces]}
  cells.update({name: [str(v) for v in values] for name, values in rows.items()})
  widths = [max(len(cells[name][t]) for name in cells) for t in range(len(pieces))]
  label = max(len(name) for name in cells)
  lines, start = [], 0
  while start < len(pieces):
    stop, used = start, label
    while stop < len(pieces) and (stop == start or used + widths[stop] + 1 <= WRAP):
      used += widths[stop] + 1
      stop += 1
    for name, values in cells.items():
      lines.append(f"  {name:>{label}} " + " ".join(f"{values[t]:>{widths[t]}}" for t in range(start, stop)))
    start = stop
  return lines


def render(batch: dict[str, np.ndarray], tokenizer, n: int) -> str:
  """Each of the first n rows of a training batch: decoded text, then its token columns."""
  out = []
  for b in range(min(n, batch["tokens"].shape[0])):
    length = int(np.count_nonzero(batch["tokens"][b]))
    tokens = batch["tokens"][b, :length]
    positions = batch["positions"][b, :length]
    rows = {"pos": positions.tolist()} if positions.ndim == 1 else {
        f"pos{level}": positions[:, level].tolist() for level in range(positions.shape[1])}
    rows["loss"] = ["1" if m else "." for m in batch["loss_mask"][b, :length]]
    out.append(f"#{b} {tokenizer.decode(tokens[None])[0]!r}  ({length} tokens)")
    out.extend(columns(tokenizer.pieces(tokens[None])[0], rows))
  return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  defaults = pipeline.default_data_config()
  parser.add_argument("--task", default=defaults.task)
  parser.add_argument("--task_options", default="{}", help="JSON, e.g. '{\"n_operands\": 3}'")
  parser.add_argument("--format", default=defaults.format)
  parser.add_argument("--tokenizer", default=defaults.tokenizer)
  parser.add_argument("--positions", default=defaults.positions)
  parser.add_argument("--position_options", default="", help="key=value,... e.g. max_pos=64 or max_offset=20,offset_per=batch")
  parser.add_argument("--loss", default=defaults.loss, choices=pipeline.LOSSES)
  parser.add_argument("--hints", default="", help="e.g. successor_hint:0.5")
  parser.add_argument("--lengths", default="1:8", help="'1:8' or 'axis=min:max,...'")
  parser.add_argument("--max_len", type=int, default=1024)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--step", type=int, default=0)
  parser.add_argument("-n", type=int, default=5, help="examples to print")
  args = parser.parse_args(argv)
  try:
    cfg = config_from_args(args)
    batch = pipeline.sample_batch(cfg, seed=args.seed, step=args.step, batch_size=max(args.n, 1))
  except ValueError as e:
    sys.exit(f"error: {e}")
  print(render(batch, pipeline.build(cfg).tokenizer, args.n))


if __name__ == "__main__":
  main()
