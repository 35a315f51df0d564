"""Frozen evaluation sets: grid cells written and read as TFDS datasets in array_record format.

Every run and every machine then scores on identical examples. TensorFlow is never needed:
the builder writes `array_record` files and the reader uses `builder.as_data_source()`.

Layout on disk: `<data_dir>/arithlab_eval/1.0.0/`, one TFDS split per cell (cell (3, 5) is
split `len_3_5`), one record per example holding that example's unpadded rows of the eval
batch (see `data_gen.pipeline.eval_batch`). `metadata.json` records the data config, the cells,
`n_per_cell`, the seed, the position levels, the stored fields and a SHA-256 checksum of every
cell's arrays. Sets written before the eval layout had `final_mask` (no "fields" in their
metadata) still read: their whole answer is final, which is what it is without a scratchpad; a
scratchpad set of that age is refused (it cannot say where its final answer starts).
A set is never overwritten: writing to a directory that holds a different set raises, and a
corrupt or truncated set raises a ValueError naming its path (nothing is deleted).
"""

import hashlib
import json
import os
import tempfile
from typing import Iterator, Mapping, Sequence

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from data_gen import pipeline
from data_gen.tokenizers import PAD_ID

NAME = "arithlab_eval"
VERSION = "1.0.0"
FIELDS = ("prompt", "prompt_positions", "answer", "answer_positions", "digit_mask", "final_mask")
FIELDS_BEFORE_FINAL_MASK = FIELDS[:5]  # what sets without "fields" in their metadata hold
DTYPES = {"prompt": np.int32, "prompt_positions": np.int32, "answer": np.int32, "answer_positions": np.int32,
          "digit_mask": np.bool_, "final_mask": np.bool_}
# Data-config fields that decide what an eval batch holds (tokens, positions, task token) and
# which problems training may see; the others (loss, bucket, max_len, ...) do not matter.
MATCHING_FIELDS = ("task", "task_options", "format", "tokenizer", "positions", "position_options",
                   "hints", "train_lengths", "holdout")


def split_name(cell: Sequence[int]) -> str:
  """The TFDS split name of a cell: (3, 5) -> 'len_3_5'."""
  return "len_" + "_".join(str(int(n)) for n in cell)


def dataset_path(data_dir: str) -> str:
  """Where `write_eval_set(..., data_dir)` puts the dataset."""
  return os.path.join(data_dir, NAME, VERSION)


def _checksum(batch: Mapping[str, np.ndarray], fields: Sequence[str]) -> str:
  digest = hashlib.sha256()
  for key in fields:
    array = np.ascontiguousarray(batch[key])
    digest.update(f"{key}{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def _unpad_rows(batch: Mapping[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
  """Yields each row of an eval batch (its FIELDS) without its padding, positions flattened to 1-D."""
  real = {"prompt": batch["prompt"] != PAD_ID, "answer": batch["answer"] != PAD_ID}
  for b in range(batch["prompt"].shape[0]):
    yield {key: batch[key][b][real[_part(key)][b]].reshape(-1) for key in FIELDS}


def _part(key: str) -> str:
  """"prompt" or "answer": which part of a row a field belongs to."""
  return "prompt" if key.startswith("prompt") else "answer"


def _pad_rows(rows: Sequence[Mapping[str, np.ndarray]], levels: int) -> dict[str, np.ndarray]:
  """Inverse of `_unpad_rows`: prompts left-padded, answers right-padded (to the longest row).
  Rows without final_mask (older sets) get the whole answer as final."""
  def stack(key: str, width: int) -> np.ndarray:
    trailing = (levels,) if levels and key.endswith("positions") else ()
    out = np.zeros((len(rows), width) + trailing, DTYPES[key])
    for b, row in enumerate(rows):
      values = np.asarray(row[key]).reshape((-1,) + trailing)
      n = values.shape[0]
      if _part(key) == "prompt":
        out[b, width - n:] = values
      else:
        out[b, :n] = values
    return out

  width = {part: max(len(row[part]) for row in rows) for part in ("prompt", "answer")}
  out = {key: stack(key, width[_part(key)]) for key in FIELDS if key in rows[0]}
  out.setdefault("final_mask", out["answer"] != PAD_ID)
  return out


class FrozenBuilder(tfds.core.GeneratorBasedBuilder):
  """A builder of precomputed arrays (the frozen eval grid, a fixed training set)."""

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> None:
    """No source folder: the set downloads nothing, so TFDS needs no checksums file next to
    this module (and its `code_path` would import `importlib_resources`, absent here)."""
    return None


class ArithlabEval(FrozenBuilder):
  """A frozen grid of evaluation cells; built from precomputed eval batches."""

  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, batches: Mapping[str, Mapping[str, np.ndarray]], metadata: dict,
               data_dir: str):
    self._batches = batches
    self._metadata = metadata
    super().__init__(data_dir=data_dir, file_format="array_record")

  def _info(self) -> tfds.core.DatasetInfo:
    def vector(dtype):
      return tfds.features.Tensor(shape=(None,), dtype=dtype)

    return tfds.core.DatasetInfo(
        builder=self,
        description="arithlab frozen evaluation grid (one split per length cell)",
        features=tfds.features.FeaturesDict({
            "index": tfds.features.Scalar(dtype=np.int64),
            **{key: vector(DTYPES[key]) for key in FIELDS},
        }),
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(self._metadata),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {name: self._generate_examples(batch) for name, batch in self._batches.items()}

  def _generate_examples(self, batch):
    for index, row in enumerate(_unpad_rows(batch)):
      yield index, dict(row, index=index)


def _set_spec(cfg: ml_collections.ConfigDict, cells: Sequence[Sequence[int]], n_per_cell: int,
              seed: int) -> dict:
  """What identifies a set: two writes with equal specs produce identical data."""
  return {
      "data_config": json.loads(cfg.to_json()),
      "cells": [[int(n) for n in cell] for cell in cells],
      "n_per_cell": int(n_per_cell),
      "seed": int(seed),
  }


def read_metadata(path: str, keys: Sequence[str], kind: str) -> dict:
  """The metadata.json of a frozen set at `path`, checked to hold `keys`.

  Raises:
    ValueError: naming the `kind` of set ("eval set", "training set") when it is missing,
      unreadable or lacks a key; nothing is deleted.
  """
  try:
    with open(os.path.join(path, "metadata.json")) as f:
      metadata = json.load(f)
    for key in keys:
      metadata[key]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{kind} at {path} is corrupt or incomplete (metadata.json: {e!r}); "
                     "nothing was deleted: remove it by hand or pick another data_dir") from e
  return metadata


def _read_metadata(path: str) -> dict:
  return read_metadata(path, ("data_config", "cells", "n_per_cell", "seed", "levels", "checksums"), "eval set")


def write_eval_set(cfg: ml_collections.ConfigDict, cells: Sequence[Sequence[int]], n_per_cell: int,
                   data_dir: str, *, seed: int = 0) -> str:
  """Samples the grid with `pipeline.eval_grid` and freezes it as a TFDS array_record dataset.

  Args:
    cfg: a data config (see `pipeline.default_data_config`).
    cells: the length cells, each one length per length axis of the task, e.g. [(3, 5), ...].
    n_per_cell: examples per cell (>= 1).
    data_dir: the root directory; the set goes to `dataset_path(data_dir)`.
    seed: the evaluation seed.
  Returns:
    The dataset path. Writing the identical set again returns it without writing.
  Raises:
    ValueError: a different set (or a corrupt one) already exists at the path.
  """
  path = dataset_path(data_dir)
  spec = _set_spec(cfg, cells, n_per_cell, seed)
  if os.path.exists(path):
    existing = _read_metadata(path)
    if {key: existing[key] for key in spec} != spec:
      raise ValueError(f"a different eval set already exists at {path}; refusing to overwrite it "
                       "(choose another data_dir)")
    return path
  if len(set(map(tuple, spec["cells"]))) != len(spec["cells"]):
    raise ValueError(f"cells {spec['cells']} repeat a cell")
  grid = pipeline.eval_grid(cfg, cells, n_per_cell, seed=seed)
  batches = {split_name(cell): batch for cell, batch in grid.items()}
  positions = next(iter(batches.values()))["prompt_positions"]
  metadata = dict(spec, levels=positions.shape[2] if positions.ndim == 3 else 0, fields=list(FIELDS),
                  checksums={name: _checksum(batch, FIELDS) for name, batch in batches.items()})
  builder = ArithlabEval(batches=batches, metadata=metadata, data_dir=data_dir)
  with tempfile.TemporaryDirectory() as downloads:
    builder.download_and_prepare(download_dir=downloads)
  return path


def read_eval_config(data_dir: str) -> ml_collections.ConfigDict:
  """The data config a frozen set was written with (plus cells, n_per_cell, seed)."""
  metadata = _read_metadata(dataset_path(data_dir))
  return ml_collections.ConfigDict({key: metadata[key]
                                    for key in ("data_config", "cells", "n_per_cell", "seed")})


def read_eval_set(data_dir: str, cfg: ml_collections.ConfigDict | None = None
                  ) -> dict[tuple[int, ...], dict[str, np.ndarray]]:
  """Reads a frozen set back into per-cell eval batches, identical to those written.

  Args:
    data_dir: the root directory given to `write_eval_set`.
    cfg: the data config of the run that will be scored; when given, its MATCHING_FIELDS must
      equal the set's (same tokens, positions, task tokens and train/eval split), else ValueError.

  Returns:
    {cell: batch} where cell is a tuple of lengths and batch is the eval dict of
    `pipeline.eval_batch`: prompt int32 [N, P] (left-padded), prompt_positions int32
    [N, P(, L)], answer int32 [N, A] (answer + EOS, right-padded), answer_positions int32
    [N, A(, L)], digit_mask bool [N, A], final_mask bool [N, A].
  Raises:
    ValueError: the directory holds no set, or a corrupt/truncated one (the path is named), or a
      scratchpad set written before final_mask existed.
  """
  path = dataset_path(data_dir)
  if not os.path.isdir(path):
    raise ValueError(f"no eval set at {path}: write one with write_eval_set first")
  metadata = _read_metadata(path)
  if cfg is not None:
    ours, theirs = json.loads(cfg.to_json()), metadata["data_config"]
    differ = [f for f in MATCHING_FIELDS if ours.get(f) != theirs.get(f)]
    if differ:
      raise ValueError(f"eval set at {path} was written for another data config: fields {differ} "
                       f"differ ({ {f: theirs.get(f) for f in differ} } there)")
  fields = metadata.get("fields", FIELDS_BEFORE_FINAL_MASK)
  if "final_mask" not in fields and "scratchpad" in metadata["data_config"]["format"]:
    raise ValueError(f"eval set at {path} (format {metadata['data_config']['format']!r}) predates final-answer "
                     "scoring: it cannot say where the final answer after the scratchpad starts; write it again "
                     "with write_eval_set into another data_dir")
  out = {}
  try:
    sources = tfds.builder_from_directory(path).as_data_source()
    for cell in metadata["cells"]:
      name = split_name(cell)
      source = sources[name]
      rows = [source[i] for i in range(len(source))]
      if len(rows) != metadata["n_per_cell"] or [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise ValueError(f"split {name} holds {len(rows)} examples, expected {metadata['n_per_cell']}")
      batch = _pad_rows(rows, metadata["levels"])
      if _checksum(batch, fields) != metadata["checksums"][name]:
        raise ValueError(f"split {name} does not match its checksum")
      out[tuple(cell)] = batch
  except Exception as e:  # TFDS / array_record raise many types on damaged files.
    raise ValueError(f"eval set at {path} is corrupt or truncated ({e!r}); nothing was deleted: "
                     "remove it by hand and write it again") from e
  return out
