"""Task hints (Awasthi & Gupta 2023): auxiliary tasks mixed into the main task's batches.

A mixture is a config string `"name:fraction,name:fraction"`, e.g. `"successor_hint:0.5"`:
each name is a registered hint task (`successor_hint`, `predecessor_hint`, `count_hint`, ...
in data_gen.tasks) and its fraction the share of every batch shard's rows it gets; the main
task gets the rest (which must be > 0). Rows are split deterministically: the main task's
rows come first, then each hint's in the listed order, sizes from the floor of the
cumulative fractions (`split_rows`). Every example starts with a task-prefix token (main task
<task:0>, the i-th hint <task:i>) and, with loss "answer", only its outputs are trained on.
A hint samples its length axes from the main task's ranges of the same names.
"""

import math
from typing import Sequence

from data_gen.tokenizers import NUM_TASKS


def parse_mixture(spec: str) -> tuple[tuple[str, float], ...]:
  """"successor_hint:0.5,count_hint:0.1" -> (("successor_hint", 0.5), ("count_hint", 0.1)).

  The empty string is no hints. Raises ValueError on a malformed entry, a fraction outside
  (0, 1), a repeated name, more hints than task tokens, or fractions summing to >= 1.
  """
  mixture = []
  for entry in filter(None, (e.strip() for e in spec.split(","))):
    name, sep, fraction = entry.partition(":")
    try:
      value = float(fraction)
    except ValueError:
      value = float("nan")
    if not sep or not name or not 0 < value < 1:
      raise ValueError(f"data.hints entry {entry!r} must be 'name:fraction' with 0 < fraction < 1")
    mixture.append((name.strip(), value))
  names = [name for name, _ in mixture]
  if len(set(names)) != len(names):
    raise ValueError(f"data.hints {spec!r} names a hint twice")
  if len(mixture) >= NUM_TASKS:
    raise ValueError(f"data.hints has {len(mixture)} hints; the vocabulary has task tokens for "
                     f"at most {NUM_TASKS - 1} hints beside the main task")
  if sum(f for _, f in mixture) >= 1:
    raise ValueError(f"data.hints fractions sum to {sum(f for _, f in mixture)}; "
                     "they must leave the main task a share (sum < 1)")
  return tuple(mixture)


def fractions(mixture: Sequence[tuple[str, float]]) -> tuple[float, ...]:
  """Row shares: the main task's first, then each hint's."""
  return (1.0 - sum(f for _, f in mixture),) + tuple(f for _, f in mixture)


def split_rows(shares: Sequence[float], rows: int) -> list[int]:
  """Rows per mixture source: floor of the cumulative shares; the sizes sum to `rows`."""
  edges = [math.floor(sum(shares[:i]) * rows + 1e-9) for i in range(len(shares))] + [rows]
  return [hi - lo for lo, hi in zip(edges, edges[1:])]


def hint_ranges(hint_axes: Sequence[str], main_axes: Sequence[str],
                main_ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
  """The (min, max) of each hint length axis: the main task's range of the same name."""
  by_name = dict(zip(main_axes, main_ranges))
  missing = [axis for axis in hint_axes if axis not in by_name]
  if missing:
    raise ValueError(f"hint length axes {missing} are not length axes of the main task "
                     f"{list(main_axes)}; pick a hint that matches the main task")
  return tuple(by_name[axis] for axis in hint_axes)
