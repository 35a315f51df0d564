"""The data pipeline: task -> format -> tokenizer -> position IDs -> training and eval batches.

Stateless sampling. `sample_batch(cfg, seed=, step=, process_index=, process_count=,
batch_size=)` depends on nothing but its arguments. The global batch is cut into
`cfg.num_shards` equal shards of consecutive rows; shard s of step t draws everything (lengths,
problems, format randomness, position offsets) from its own Philox stream keyed by
(seed, TRAIN_DOMAIN, t, s). A process builds only its own shards (process p of P owns shards
[p*S/P, (p+1)*S/P)), so a resumed run and every host draw exactly the right, disjoint rows,
and the processes' rows concatenated are the single-process batch (up to trailing padding:
each process pads its rows to its own bucketed length unless `cfg.pad_to_max_len`).
Randomness a position rule draws once per call (the Abacus offset) is drawn per shard and
mixture source. Training rows never hold a problem of the evaluation part of the hash split
(`data_gen.grid`), so evaluation cells are disjoint from training data. With
`data.train_set.size = N` the main task's rows instead cycle, epoch by epoch in a shuffled
order, through one fixed set of N distinct training problems (`data_gen.train_set`), still a
function of (seed, step, shard) alone.

Batch contract (NumPy; docs/methods.md#the-data-pipeline):
  training: tokens int32 [B, T] (BOS, [task token,] prompt, answer, EOS, PAD...; T a multiple
    of cfg.bucket), positions int32 [B, T(, L)] (0 at PAD), loss_mask float32 [B, T].
  eval: prompt int32 [B, P] left-padded, prompt_positions int32 [B, P(, L)], answer int32
    [B, A] (answer tokens, EOS, PAD...), answer_positions int32 [B, A(, L)], digit_mask bool
    [B, A], final_mask bool [B, A] (the tokens that score the final answer; see `final_start`).
"""

import dataclasses
import inspect
from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np

from data_gen import formats, grid, hints, positions, tasks, tokenizers, train_set
from data_gen.text import Problem
from data_gen.tokenizers import TokenBatch

LOSSES = ("answer", "all")
TRAIN_DTYPES = {"tokens": np.int32, "positions": np.int32, "loss_mask": np.float32}


def default_data_config() -> ml_collections.ConfigDict:
  """The data config every experiment starts from (20-digit reversed addition, one token per char)."""
  cfg = ml_collections.ConfigDict()
  cfg.task = "addition"
  cfg.task_options = ml_collections.ConfigDict()  # keyword arguments of the task
  cfg.format = "reverse_answer+dollar"
  cfg.tokenizer = "char"
  cfg.positions = "sequential"
  cfg.position_options = ml_collections.ConfigDict()  # keyword arguments of the position rule
  cfg.loss = "answer"  # "answer": answer tokens and EOS; "all": every token after the prefix (Lee)
  cfg.train_lengths = ml_collections.ConfigDict({"len_0": (1, 20), "len_1": (1, 20)})  # per length axis
  cfg.hints = ""  # e.g. "successor_hint:0.5" (see data_gen.hints)
  cfg.bucket = 8  # T is rounded up to a multiple of this
  cfg.max_len = 256  # longest training sequence; a longer one raises (eval cells are not bounded)
  cfg.pad_to_max_len = False  # T = max_len always (identical shapes on every host)
  cfg.num_shards = 1  # random streams per global batch; process_count must divide it
  cfg.holdout = 0.125  # hash-split fraction reserved for evaluation (see data_gen.grid)
  cfg.train_set = train_set.default_config()  # a fixed set of N distinct problems (size 0: off)
  return cfg


@dataclasses.dataclass(frozen=True)
class Source:
  """One task of the mixture, ready to sample: its rows are encoded behind `task_index`."""

  task: Any
  ranges: tuple[tuple[int, int], ...]  # (min, max) per length axis
  task_index: int | None  # task-prefix token index; None without hints
  holdout: float  # hash split applied to training rows (0 for hint tasks)
  fixed: Problem | None = None  # the fixed training set (data.train_set), main task only


@dataclasses.dataclass(frozen=True)
class Pipeline:
  """A validated data config, resolved to objects."""

  sources: tuple[Source, ...]
  fractions: tuple[float, ...]
  spec: formats.FormatSpec
  tokenizer: tokenizers.Tokenizer
  rule: Callable[..., np.ndarray]
  rule_options: dict
  loss: str
  bucket: int
  max_len: int
  pad_to_max_len: bool
  num_shards: int


# The longest length axis supported: digits and number indices are int16 inside data_gen, and an
# answer may be longer than its operands (a product has up to len_a + len_b digits).
MAX_AXIS_LENGTH = 10_000


def _ranges(lengths: Any, axes: Sequence[str], where: str) -> tuple[tuple[int, int], ...]:
  names = sorted(lengths.keys()) if lengths is not None else []
  if sorted(axes) != names:
    raise ValueError(f"{where} has length axes {names}; task needs exactly {sorted(axes)}")
  out = []
  for axis in axes:
    lo, hi = (int(v) for v in lengths[axis])
    if not 1 <= lo <= hi:
      raise ValueError(f"{where}.{axis} = ({lo}, {hi}) is not a range 1 <= min <= max")
    if hi > MAX_AXIS_LENGTH:
      raise ValueError(f"{where}.{axis} = ({lo}, {hi}) exceeds the supported maximum length {MAX_AXIS_LENGTH}")
    out.append((lo, hi))
  return tuple(out)


def build(cfg: ml_collections.ConfigDict) -> Pipeline:
  """Validates a data config and resolves its names (ValueError names the bad field)."""
  if cfg.loss not in LOSSES:
    raise ValueError(f"data.loss {cfg.loss!r} unknown; choose one of: {', '.join(LOSSES)}")
  for field in ("bucket", "max_len", "num_shards"):
    if int(cfg[field]) < 1:
      raise ValueError(f"data.{field} = {cfg[field]} must be >= 1")
  if cfg.pad_to_max_len and cfg.max_len % cfg.bucket:
    raise ValueError(f"data.max_len = {cfg.max_len} must be a multiple of data.bucket = "
                     f"{cfg.bucket} when data.pad_to_max_len is set")
  if not 0 <= cfg.holdout < 1:
    raise ValueError(f"data.holdout = {cfg.holdout} must be in [0, 1)")
  main = tasks.build(cfg.task, **cfg.task_options)
  mixture = hints.parse_mixture(cfg.hints)
  ranges = _ranges(cfg.train_lengths, main.length_axes, "data.train_lengths")
  sources = [Source(main, ranges, 0 if mixture else None, float(cfg.holdout), _fixed_set(cfg, main, ranges))]
  for i, (name, _) in enumerate(mixture, start=1):
    hint = tasks.build(name)
    sources.append(Source(hint, hints.hint_ranges(hint.length_axes, main.length_axes,
                                                  sources[0].ranges), i, 0.0))
  rule = positions.POSITIONS.get(cfg.positions)
  options = {name: p for name, p in inspect.signature(rule).parameters.items()
             if p.kind == p.KEYWORD_ONLY and name != "train"}
  unknown = sorted(set(cfg.position_options) - set(options))
  missing = sorted(name for name, p in options.items() if p.default is p.empty and name not in cfg.position_options)
  if unknown or missing:
    raise ValueError(f"data.position_options: position rule {cfg.positions!r} takes options "
                     f"{list(options) or 'none'}; unknown {unknown}, missing required {missing}")
  spec = formats.parse_format(cfg.format)
  positions.check_format(cfg.positions, cfg.format, spec)
  return Pipeline(
      sources=tuple(sources),
      fractions=hints.fractions(mixture),
      spec=spec,
      tokenizer=tokenizers.TOKENIZERS.get(cfg.tokenizer),
      rule=rule,
      rule_options=dict(cfg.position_options),
      loss=cfg.loss,
      bucket=int(cfg.bucket),
      max_len=int(cfg.max_len),
      pad_to_max_len=bool(cfg.pad_to_max_len),
      num_shards=int(cfg.num_shards),
  )


def _fixed_set(cfg: ml_collections.ConfigDict, task, ranges: tuple[tuple[int, int], ...]) -> Problem | None:
  """The main task's fixed training set of data.train_set (None when its size is 0)."""
  spec = cfg.train_set
  if int(spec.size) < 0:
    raise ValueError(f"data.train_set.size = {spec.size} must be >= 0 (0: fresh problems every step)")
  if not spec.size:
    if spec.parts or spec.balanced:
      raise ValueError("data.train_set.parts and .balanced need data.train_set.size > 0")
    return None
  if spec.balanced and not hasattr(task, "stratum"):
    raise ValueError(f"data.train_set.balanced: task {cfg.task!r} defines no strata to balance; "
                     "set data.train_set.balanced=False")
  return train_set.materialize(task, ranges, size=int(spec.size), seed=int(spec.seed), holdout=float(cfg.holdout),
                               parts=train_set.parse_parts(spec.parts, task.length_axes, ranges, int(spec.size)),
                               balanced=bool(spec.balanced))


def validate_data_config(cfg: ml_collections.ConfigDict) -> Pipeline:
  """Validates a data config once, at start-up; returns the built Pipeline.

  Beyond `build`'s checks it encodes one example of every mixture source at the smallest
  and at the largest training lengths, so that a format that does not fit the task, a
  missing position-rule option, a length below a task's minimum or an example longer than
  max_len fail here, with the config named, rather than at some later step.
  """
  pipe = build(cfg)
  rng = np.random.default_rng(0)
  for source in pipe.sources:
    for end in (0, 1):
      lengths_1xK = np.array([[r[end] for r in source.ranges]])
      try:
        encode(pipe, source, source.task.sample(rng, lengths_1xK), rng, train=True)
      except ValueError as e:
        raise ValueError(f"data config (task {cfg.task!r}, format {cfg.format!r}, tokenizer "
                         f"{cfg.tokenizer!r}, positions {cfg.positions!r}) fails on an example of "
                         f"lengths {lengths_1xK[0].tolist()}: {e}") from e
  return pipe


def encode(pipe: Pipeline, source: Source, problem, rng: np.random.Generator, *,
           train: bool) -> tuple[TokenBatch, np.ndarray]:
  """Problem -> (framed TokenBatch [B, T]: BOS, [task,] text, EOS; position ids int32 [B, T(, L)]).

  train=True: T is the longest row rounded up to a multiple of data.bucket, and an example
  longer than max_len raises a ValueError; train=False: T is the longest row. `train` also
  switches the position rule's training-time randomization.
  """
  text = formats.render(problem, pipe.spec, rng)
  tb = pipe.tokenizer.encode_framed(text, source.task_index, bucket=pipe.bucket if train else 1)
  longest = int(tb.length_B.max())
  if train and longest > pipe.max_len:
    raise ValueError(f"a training example has {longest} tokens, above data.max_len = {pipe.max_len}")
  ids = pipe.rule(tb, rng, train=train, **pipe.rule_options)
  return tb, ids


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def train_arrays(pipe: Pipeline, source: Source, tb: TokenBatch,
                 ids: np.ndarray) -> dict[str, np.ndarray]:
  """The training dict of one encoded group (unpadded T): tokens, positions, loss_mask.

  loss "answer": the target tokens (answer and EOS); "all": every token after the prefix
  (BOS and, with hints, the task token).
  """
  if pipe.loss == "answer":
    mask = tb.target_BxT
  else:
    prefix = 1 if source.task_index is None else 2
    mask = tb.valid_BxT & (np.arange(tb.tokens_BxT.shape[1]) >= prefix)
  return {"tokens": tb.tokens_BxT, "positions": ids, "loss_mask": mask}


def _stack_rows(parts: Sequence[dict[str, np.ndarray]], t: int) -> dict[str, np.ndarray]:
  """Concatenates groups of rows, each right-padded to T (PAD, position 0, no loss); one group
  already T wide is only cast."""
  if len(parts) == 1 and parts[0]["tokens"].shape[1] == t:
    return {key: parts[0][key].astype(dtype, order="C", copy=False) for key, dtype in TRAIN_DTYPES.items()}
  rows = sum(part["tokens"].shape[0] for part in parts)
  out = {key: np.zeros((rows, t) + parts[0][key].shape[2:], dtype) for key, dtype in TRAIN_DTYPES.items()}
  start = 0
  for part in parts:
    n, w = part["tokens"].shape
    for key, value in part.items():
      out[key][start:start + n, :w] = value
    start += n
  return out


def _problems(pipe: Pipeline, source: Source, rng: np.random.Generator, seed: int, step: int, shard: int,
              n: int) -> Problem:
  """The n problems of one source in one shard: the next rows of the fixed set's epochs (its
  rows are counted step by step, shard by shard), else fresh training problems."""
  if source.fixed is None:
    return grid.sample_training(source.task, rng, source.ranges, n, holdout=source.holdout)
  start = (step * pipe.num_shards + shard) * n
  return source.fixed.take(train_set.epoch_rows(source.fixed.batch, seed, start, n))


def _shard(pipe: Pipeline, seed: int, step: int, shard: int, rows: int) -> list[dict[str, np.ndarray]]:
  """The training arrays of one shard, one unpadded dict per mixture source."""
  rng = grid.derive_rng(seed, grid.TRAIN_DOMAIN, step, shard)
  parts = []
  for source, n in zip(pipe.sources, hints.split_rows(pipe.fractions, rows)):
    if n:
      tb, ids = encode(pipe, source, _problems(pipe, source, rng, seed, step, shard, n), rng, train=True)
      parts.append(train_arrays(pipe, source, tb, ids))
  return parts


def sample_batch(cfg: ml_collections.ConfigDict, *, seed: int, step: int, process_index: int = 0,
                 process_count: int = 1, batch_size: int) -> dict[str, np.ndarray]:
  """This process's rows of the global training batch of `step` (stateless).

  Args:
    cfg: a data config (`default_data_config()`), built here (call `validate_data_config`
      once at start-up, and `sample_built` with its result in a loop).
    seed: the data seed; step: the training step (any int >= 0).
    process_index, process_count: this process and the number of processes.
    batch_size: the GLOBAL batch; divisible by cfg.num_shards, which process_count divides.
  Returns:
    {"tokens": int32 [b, T], "positions": int32 [b, T(, L)], "loss_mask": float32 [b, T]} with
    b = batch_size // process_count rows and T a multiple of cfg.bucket (cfg.max_len when
    cfg.pad_to_max_len).
  """
  pipe = build(cfg)
  return sample_built(pipe, seed=seed, step=step, process_index=process_index,
                      process_count=process_count, batch_size=batch_size)


def sample_built(pipe: Pipeline, *, seed: int, step: int, process_index: int, process_count: int,
                 batch_size: int) -> dict[str, np.ndarray]:
  """`sample_batch` for an already built Pipeline (skips validation; for hot loops)."""
  shards = pipe.num_shards
  if shards % process_count or batch_size % shards:
    raise ValueError(f"batch_size {batch_size} must divide into data.num_shards = {shards} shards, "
                     f"and process_count {process_count} must divide data.num_shards")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is outside [0, {process_count})")
  per = shards // process_count
  parts = [part for s in range(process_index * per, (process_index + 1) * per)
           for part in _shard(pipe, seed, step, s, batch_size // shards)]
  longest = max(part["tokens"].shape[1] for part in parts)
  return _stack_rows(parts, pipe.max_len if pipe.pad_to_max_len else _round_up(longest, pipe.bucket))


def _split_prompt(tb: TokenBatch) -> np.ndarray:
  """int [B]: where each row's target suffix (answer + EOS) starts."""
  t = np.arange(tb.tokens_BxT.shape[1])
  start_B = np.where(tb.target_BxT, t, tb.tokens_BxT.shape[1]).min(axis=1)
  suffix_BxT = tb.valid_BxT & (t >= start_B[:, None])
  if not np.array_equal(suffix_BxT, tb.target_BxT & tb.valid_BxT):
    raise ValueError("the format's target characters are not one suffix of each example; "
                     "an eval batch needs prompt then answer")
  return start_B


def _gather(x: np.ndarray, index_BxN: np.ndarray, valid_BxN: np.ndarray) -> np.ndarray:
  index = np.clip(index_BxN, 0, x.shape[1] - 1).reshape(index_BxN.shape + (1,) * (x.ndim - 2))
  out = np.take_along_axis(x, index, axis=1)
  return np.where(valid_BxN.reshape(valid_BxN.shape + (1,) * (x.ndim - 2)), out, 0)


def final_start(pipe: Pipeline, tb: TokenBatch) -> np.ndarray | None:
  """int [B]: where each row's final answer is introduced, or None when the whole answer is final.

  Without a scratchpad the whole target is the answer. After a scratchpad the final answer is
  the problem's answer number, the first target token that belongs to a number (a scratchpad's
  intermediate digits belong to none), together with the run of non-digit tokens before it that
  introduces it (`.\n` of `...C->0.\n495`, ` , END\n</scratch>\n` of the detailed one).
  """
  if not pipe.spec.scratchpad:
    return None
  t_T = np.arange(tb.tokens_BxT.shape[1])
  answer_B = np.where(tb.target_BxT & (tb.num_BxT >= 0), t_T, t_T.size).min(axis=1)
  digit_V = np.array([s.isdigit() for s in pipe.tokenizer.vocab])
  digit_BxT = digit_V[tb.tokens_BxT] | ~tb.target_BxT
  last_digit_B = np.where(digit_BxT & (t_T < answer_B[:, None]), t_T, -1).max(axis=1)
  return last_digit_B + 1


def eval_arrays(tb: TokenBatch, ids: np.ndarray, final_B: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Splits encoded examples into the eval layout (prompt left-padded, answer right-padded).

  final_B: int [B], the token where each row's final answer (with what introduces it) starts
  (`final_start`); None: the whole answer is final. final_mask marks it and EOS.
  """
  start_B = _split_prompt(tb)
  final_B = start_B if final_B is None else final_B
  answer_B = tb.length_B - start_B
  p, a = int(start_B.max()), int(answer_B.max())
  j_P, j_A = np.arange(p)[None, :], np.arange(a)[None, :]
  prompt_src, prompt_ok = j_P - (p - start_B[:, None]), j_P >= p - start_B[:, None]
  answer_src, answer_ok = start_B[:, None] + j_A, j_A < answer_B[:, None]
  return {
      "prompt": _gather(tb.tokens_BxT, prompt_src, prompt_ok).astype(np.int32),
      "prompt_positions": _gather(ids, prompt_src, prompt_ok).astype(np.int32),
      "answer": _gather(tb.tokens_BxT, answer_src, answer_ok).astype(np.int32),
      "answer_positions": _gather(ids, answer_src, answer_ok).astype(np.int32),
      "digit_mask": _gather(tb.sig_BxT >= 0, answer_src, answer_ok).astype(bool),
      "final_mask": answer_ok & (answer_src >= final_B[:, None]),
  }


def eval_batch(cfg: ml_collections.ConfigDict, cell: Sequence[int], n: int, *,
               seed: int) -> dict[str, np.ndarray]:
  """N held-out main-task examples with exactly the lengths of `cell`, in the eval layout.

  Args:
    cfg: a data config; cell: one length per length axis of cfg.task; n: rows; seed: eval seed.
  Returns:
    prompt int32 [n, P], prompt_positions int32 [n, P(, L)], answer int32 [n, A],
    answer_positions int32 [n, A(, L)], digit_mask bool [n, A], final_mask bool [n, A]; positions
    from the rule in test mode (train=False).
  """
  return eval_grid(cfg, [cell], n, seed=seed)[tuple(int(c) for c in cell)]


def eval_grid(cfg: ml_collections.ConfigDict, cells: Sequence[Sequence[int]], n: int | Mapping[tuple[int, ...], int],
              *, seed: int) -> dict[tuple[int, ...], dict[str, np.ndarray]]:
  """`eval_batch` for every cell: {cell tuple: eval dict}. Each cell has its own random stream.
  n: rows per cell, or {cell: rows}."""
  pipe = build(cfg)
  out = {}
  for cell in cells:
    cell = tuple(int(c) for c in cell)
    rng = grid.derive_rng(seed, grid.EVAL_DOMAIN, *cell)
    out[cell] = _encode_eval(pipe, _cell_problem(pipe, cell, _count(n, cell), rng), rng)
  return out


def validation_grid(cfg: ml_collections.ConfigDict, cells: Sequence[Sequence[int]], n: int, *, seed: int,
                    test_n: int | Mapping[tuple[int, ...], int], test_seed: int
                    ) -> dict[tuple[int, ...], dict[str, np.ndarray]]:
  """N validation problems per cell in the eval layout, for choosing the best checkpoint.

  They come from the same part of the hash split as the test cells of `eval_grid(cfg, cells,
  test_n, seed=test_seed)` (held out from training), through their own stream (seed,
  VAL_DOMAIN, cell), and none of them is a problem of the test cell. A cell whose problems are
  (almost) all in its test cell (a 1 + 1 digit cell holds 100) is left out.
  """
  pipe = build(cfg)
  out = {}
  for cell in cells:
    cell = tuple(int(c) for c in cell)
    test = _cell_problem(pipe, cell, _count(test_n, cell), grid.derive_rng(test_seed, grid.EVAL_DOMAIN, *cell))
    rng = grid.derive_rng(seed, grid.VAL_DOMAIN, *cell)
    try:
      problem = _cell_problem(pipe, cell, n, rng, exclude_E=np.unique(grid.problem_hash(test)))
    except ValueError:  # no problem left outside the test cell
      continue
    out[cell] = _encode_eval(pipe, problem, rng)
  return out


def _count(n: int | Mapping[tuple[int, ...], int], cell: tuple[int, ...]) -> int:
  return int(n) if isinstance(n, (int, np.integer)) else int(n[cell])


def _cell_problem(pipe: Pipeline, cell: tuple[int, ...], n: int, rng: np.random.Generator, **exclude):
  main = pipe.sources[0]
  return grid.sample_cell(main.task, cell, n, rng=rng, holdout=main.holdout, train_ranges=main.ranges, **exclude)


def _encode_eval(pipe: Pipeline, problem, rng: np.random.Generator) -> dict[str, np.ndarray]:
  tb, ids = encode(pipe, pipe.sources[0], problem, rng, train=False)
  return eval_arrays(tb, ids, final_start(pipe, tb))
