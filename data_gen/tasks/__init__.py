"""Tasks: each draws a batch of `Problem`s with exact, per-row lengths.

A task is a small class registered in `TASKS` and built from config values with
`build(name, **options)`. Every task has

  length_axes: tuple[str, ...]   the per-row length knobs (an evaluation grid's axes);
  sample(rng, lengths_BxK) -> Problem   one problem per row of lengths_BxK (int [B, K],
                                 K = len(length_axes)), honouring every length exactly.

A task may also define strata for a balanced fixed training set (`data_gen.train_set`):
  n_strata(ranges) -> int        strata of problems with lengths in the (min, max) ranges;
  stratum(problem) -> int [B]    each problem's stratum (addition: its number of carries).

Answers are computed on digit arrays for the whole batch at once (`digits.py`).

Conventions: numbers have no leading zeros; a one-digit number is uniform in 0..9 (0 is a
valid one-digit operand, as in Lee et al.'s one-digit pairs); longer numbers have a
leading digit in 1..9. Lengths below an axis's minimum raise a ValueError naming the axis.

Registered tasks (see each module):
  addition            n operands (option n_operands, default 2), axes len_0..len_{n-1};
                      option balanced_carries (Lee et al.).
  multiplication      a * b, axes (len_a, len_b).
  sorting             a list of numbers, axes (count, digits) (Awasthi & Gupta).
  bucket_sort         a digit string sorted, axes (length,) (Ruoss et al.; alphabet 5).
  counting_successor  a, b -> a a+1 ... b, axes (count, digits) (Zhou et al. 2023).
  counting_repeat     n copies of a symbol -> 1 2 ... n, axes (count,) (Chang & Bisk).
  successor_hint, predecessor_hint, count_hint
                      Awasthi & Gupta's auxiliary tasks on a list and one element of it,
                      axes (count, digits).
"""

import inspect

from data_gen.registry import Registry

TASKS = Registry("task")


def build(name: str, **options):
  """The task `name` constructed with its options (config values).

  Raises:
    ValueError: unknown task name, or an option the task does not take (listing its options).
  """
  cls = TASKS.get(name)
  valid = [p for p in inspect.signature(cls).parameters]
  unknown = sorted(set(options) - set(valid))
  if unknown:
    raise ValueError(f"task {name!r} has no option(s) {unknown}; its options are: {valid or 'none'}")
  return cls(**options)


# Registration happens on import; keep this list in sync with the docstring.
from data_gen.tasks import addition, bucket_sort, counting, hint_tasks, multiplication, sorting  # noqa: E402,F401
