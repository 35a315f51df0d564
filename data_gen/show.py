"""Prints training examples as the model sees them: decoded text, tokens, position IDs, loss.

  python -m data_gen.show --task=addition --format=reverse_answer+dollar --tokenizer=chunk3_r2l -n 5
  python -m data_gen.show --task=sorting --format=plain --positions=abacus --lengths=count=2:6,digits=1:3
  python -m data_gen.show --hints=successor_hint:0.5 --task=sorting --lengths=2:5
  python -m data_gen.show --format=plain --lengths=1:3 --task_options='{"balanced_carries": true}' \
      --train_set_size=1000 --train_set_parts='100@1:1;90@1:2' --train_set_balanced

Every flag is a field of `pipeline.default_data_config()`; `--lengths` sets the training
ranges: "1:8" for every length axis of the task, or "axis=min:max,axis=min:max".
`--position_options` takes "key=value,..." with integer values, or a word where the rule's
option is a word (e.g. max_pos=64, max_offset=20,offset_per=example).
Without --format, a task is shown in the default data format when that applies to it (the
arithmetic tasks), else in the plain one.
`--train_set_*` set `data.train_set` (a fixed set of N distinct problems, data_gen.train_set):
the batch then comes from the set, and the set's size and first problems are printed first.
"""

import argparse
import inspect
import json
import sys
from typing import Sequence

import numpy as np

from data_gen import formats, pipeline, positions, tasks

WRAP = 100  # characters per printed line of token columns


def _int(text: str, flag: str, spec: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"{flag}={spec!r}: {text!r} is not an integer") from None


def _range(text: str, spec: str) -> tuple[int, int]:
  lo, _, hi = text.partition(":")
  return _int(lo, "--lengths", spec), _int(hi or lo, "--lengths", spec)


def parse_lengths(spec: str, axes: Sequence[str]) -> dict[str, tuple[int, int]]:
  """"1:8" -> every axis 1..8; "count=2:6,digits=1:3" -> per axis (the rest default to 1:8).

  Raises:
    ValueError: naming --lengths for an unknown axis or a bound that is not an integer.
  """
  if "=" not in spec:
    return {axis: _range(spec, spec) for axis in axes}
  ranges = {axis: (1, 8) for axis in axes}
  for entry in spec.split(","):
    axis, _, value = entry.partition("=")
    if axis not in ranges:
      raise ValueError(f"--lengths axis {axis!r} unknown; the task's axes are {list(axes)}")
    ranges[axis] = _range(value, spec)
  return ranges


def parse_options(spec: str, rule: str) -> dict[str, int | str]:
  """"max_pos=64,offset_per=batch" -> {"max_pos": 64, "offset_per": "batch"} for position rule
  `rule`: an option whose default is a word (a str) takes a word, every other an integer.

  Raises:
    ValueError: naming --position_options for an entry without "=" or a value that is not an
      integer where the option takes one.
  """
  options = {}
  for entry in filter(None, spec.split(",")):
    key, sep, value = entry.partition("=")
    if not sep:
      raise ValueError(f"--position_options={spec!r}: write key=integer entries, e.g. max_pos=64")
    param = inspect.signature(positions.POSITIONS.get(rule)).parameters.get(key)
    words = param is not None and isinstance(param.default, str)
    options[key] = value if words else _int(value, "--position_options", spec)
  return options


def default_format(task, ranges: dict[str, tuple[int, int]]) -> str:
  """The format shown without --format: the default data config's when the task's layout takes
  it, else "plain". The layout comes from one sampled problem at the shortest lengths."""
  lengths_1xK = np.array([[ranges[axis][0] for axis in task.length_axes]])
  layout = task.sample(np.random.default_rng(0), lengths_1xK).layout
  default = pipeline.default_data_config().format
  applies = set(formats.parse_format(default).switches()) <= formats.LAYOUT_SWITCHES[layout]
  return default if applies else "plain"


def config_from_args(args: argparse.Namespace):
  """The data config the flags describe."""
  cfg = pipeline.default_data_config()
  cfg.task, cfg.tokenizer = args.task, args.tokenizer
  cfg.positions, cfg.loss, cfg.hints = args.positions, args.loss, args.hints
  cfg.task_options = json.loads(args.task_options)
  cfg.position_options = parse_options(args.position_options, args.positions)
  task = tasks.build(args.task, **cfg.task_options)
  cfg.train_lengths = parse_lengths(args.lengths, task.length_axes)
  cfg.format = args.format or default_format(task, cfg.train_lengths)
  cfg.max_len = args.max_len
  cfg.train_set.update(size=args.train_set_size, seed=args.train_set_seed, parts=args.train_set_parts,
                       balanced=args.train_set_balanced)
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
  parser.add_argument("--format", default="",
                      help=f"default: {defaults.format} where it applies to the task, else plain")
  parser.add_argument("--tokenizer", default=defaults.tokenizer)
  parser.add_argument("--positions", default=defaults.positions)
  parser.add_argument("--position_options", default="", help="key=value,... e.g. max_pos=64 or max_offset=20,offset_per=batch")
  parser.add_argument("--loss", default=defaults.loss, choices=pipeline.LOSSES)
  parser.add_argument("--hints", default="", help="e.g. successor_hint:0.5")
  parser.add_argument("--lengths", default="1:8", help="'1:8' or 'axis=min:max,...'")
  parser.add_argument("--max_len", type=int, default=1024)
  parser.add_argument("--train_set_size", type=int, default=0, help="N distinct problems (0: fresh)")
  parser.add_argument("--train_set_seed", type=int, default=0)
  parser.add_argument("--train_set_parts", default="", help="e.g. '100@1:1;90@1:2'")
  parser.add_argument("--train_set_balanced", action="store_true", help="balance the task's strata")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--step", type=int, default=0)
  parser.add_argument("-n", type=int, default=5, help="examples to print")
  args = parser.parse_args(argv)
  try:
    cfg = config_from_args(args)
    pipe = pipeline.build(cfg)
    batch = pipeline.sample_built(pipe, seed=args.seed, step=args.step, process_index=0, process_count=1,
                                  batch_size=max(args.n, 1))
  except ValueError as e:
    sys.exit(f"error: {e}")
  fixed = pipe.sources[0].fixed
  if fixed is not None:
    first = formats.render(fixed.take(np.arange(min(args.n, fixed.batch))), "plain").strings()
    print(f"fixed training set: {fixed.batch} distinct problems, first in set order: {', '.join(first)}")
  print(render(batch, pipe.tokenizer, args.n))


if __name__ == "__main__":
  main()
