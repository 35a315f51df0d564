"""Fixed training sets (`data.train_set`) written and read as TFDS array_record datasets.

A run's set is a deterministic function of its data config (`data_gen.train_set`); writing it
lets a reader inspect it or another lab load exactly the same problems. Layout on disk:
`<data_dir>/arithlab_train_set/1.0.0/`, one split "train" with one record per problem in set
order: `index`, `text` (the problem in the plain format, e.g. `128+367=495`, as ASCII bytes)
and its numbers, each as int8 digits, least-significant first, unpadded (`operand_<i>`,
`answer_<i>`, `query`), with `operand_count` / `answer_count` for list tasks.
`metadata.json` holds the data-config fields that decide the set, the problems' op, layout and
prefix, and a SHA-256 checksum of the set. A set is never overwritten; a corrupt one raises
a ValueError naming its path.
"""

import hashlib
import json
import os
import tempfile

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from data_gen import formats, pipeline, tfds_eval
from data_gen.text import Number, Problem

NAME = "arithlab_train_set"
VERSION = "1.0.0"
# Data-config fields that decide which problems the set holds.
MATCHING_FIELDS = ("task", "task_options", "train_lengths", "holdout", "train_set")


def dataset_path(data_dir: str) -> str:
  """Where `write_train_set(..., data_dir)` puts the dataset."""
  return os.path.join(data_dir, NAME, VERSION)


def _numbers(problem: Problem) -> dict[str, Number]:
  out = {f"operand_{i}": n for i, n in enumerate(problem.operands)}
  out.update({f"answer_{i}": n for i, n in enumerate(problem.answers)})
  return out | ({"query": problem.query} if problem.query is not None else {})


def _counts(problem: Problem) -> dict[str, np.ndarray]:
  counts = {"operand_count": problem.operand_count_B, "answer_count": problem.answer_count_B}
  return {key: value for key, value in counts.items() if value is not None}


def checksum(problem: Problem) -> str:
  """SHA-256 of every number's digits and lengths and the per-row counts, in set order."""
  digest = hashlib.sha256()
  arrays = {f"{k}/digits": n.digits_BxW[:, :int(n.length_B.max())] for k, n in _numbers(problem).items()}
  arrays.update({f"{k}/length": n.length_B for k, n in _numbers(problem).items()}, **_counts(problem))
  for key in sorted(arrays):
    array = np.ascontiguousarray(arrays[key])
    digest.update(f"{key}{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


class ArithlabTrainSet(tfds_eval.FrozenBuilder):
  """A fixed training set, one record per problem."""

  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, problem: Problem, metadata: dict, data_dir: str):
    self._problem = problem
    self._metadata = metadata
    super().__init__(data_dir=data_dir, file_format="array_record")

  def _info(self) -> tfds.core.DatasetInfo:
    vector = lambda dtype: tfds.features.Tensor(shape=(None,), dtype=dtype)
    features = {"index": tfds.features.Scalar(dtype=np.int64), "text": vector(np.uint8)}
    features.update({key: vector(np.int8) for key in _numbers(self._problem)})
    features.update({key: tfds.features.Scalar(dtype=np.int32) for key in _counts(self._problem)})
    return tfds.core.DatasetInfo(builder=self, description="arithlab fixed training set",
                                 features=tfds.features.FeaturesDict(features), disable_shuffling=True,
                                 metadata=tfds.core.MetadataDict(self._metadata))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    texts = formats.render(self._problem, "plain").strings()
    numbers, counts = _numbers(self._problem), _counts(self._problem)
    for b, text in enumerate(texts):
      row = {key: n.digits_BxW[b, :n.length_B[b]] for key, n in numbers.items()}
      row.update({key: int(c[b]) for key, c in counts.items()})
      yield b, dict(row, index=b, text=np.frombuffer(text.encode("ascii"), np.uint8))


def _spec(cfg: ml_collections.ConfigDict) -> dict:
  data = json.loads(cfg.to_json())
  return {field: data[field] for field in MATCHING_FIELDS}


def _read_metadata(path: str) -> dict:
  return tfds_eval.read_metadata(path, ("data_config", "op", "layout", "prefix", "size", "checksum"),
                                 "training set")


def write_train_set(cfg: ml_collections.ConfigDict, data_dir: str) -> str:
  """Materializes the fixed training set of data config `cfg` and freezes it under data_dir.

  Returns:
    The dataset path. Writing the identical set again returns it without writing.
  Raises:
    ValueError: cfg has no fixed set (data.train_set.size 0), or a different (or corrupt) set
      already exists at the path.
  """
  if not cfg.train_set.size:
    raise ValueError("data.train_set.size is 0: there is no fixed training set to write")
  path = dataset_path(data_dir)
  spec = _spec(cfg)
  if os.path.exists(path):
    if _read_metadata(path)["data_config"] != spec:
      raise ValueError(f"a different training set already exists at {path}; refusing to overwrite it "
                       "(choose another data_dir)")
    return path
  problem = pipeline.build(cfg).sources[0].fixed
  metadata = {"data_config": spec, "op": problem.op, "layout": problem.layout, "prefix": problem.prefix,
              "size": problem.batch, "checksum": checksum(problem)}
  builder = ArithlabTrainSet(problem=problem, metadata=metadata, data_dir=data_dir)
  with tempfile.TemporaryDirectory() as downloads:
    builder.download_and_prepare(download_dir=downloads)
  return path


def _stack(vectors) -> Number:
  length_B = np.array([len(v) for v in vectors], np.int32)
  digits_BxW = np.zeros((len(vectors), max(int(length_B.max()), 1)), np.int8)
  for b, v in enumerate(vectors):
    digits_BxW[b, :len(v)] = v
  return Number(digits_BxW, length_B)


def read_train_set(data_dir: str, cfg: ml_collections.ConfigDict | None = None) -> tuple[Problem, list[str]]:
  """Reads a written set back: (the Problem of batch N, identical to the one written; the
  problems' plain texts). cfg, when given, must match the set's MATCHING_FIELDS (else ValueError)."""
  path = dataset_path(data_dir)
  if not os.path.isdir(path):
    raise ValueError(f"no training set at {path}: write one with write_train_set first")
  metadata = _read_metadata(path)
  if cfg is not None and _spec(cfg) != metadata["data_config"]:
    differ = [f for f in MATCHING_FIELDS if _spec(cfg)[f] != metadata["data_config"][f]]
    raise ValueError(f"training set at {path} was written for another data config: fields {differ} differ")
  try:
    source = tfds.builder_from_directory(path).as_data_source()["train"]
    rows = [source[i] for i in range(len(source))]
    if len(rows) != metadata["size"] or [int(r["index"]) for r in rows] != list(range(len(rows))):
      raise ValueError(f"the split holds {len(rows)} problems, expected {metadata['size']}")
    keys = rows[0].keys()
    column = lambda key: _stack([r[key] for r in rows])
    series = lambda name: tuple(column(f"{name}_{i}") for i in range(len(keys)) if f"{name}_{i}" in keys)
    counts = {key: np.array([r[key] for r in rows], np.int32) if key in keys else None
              for key in ("operand_count", "answer_count")}
    problem = Problem(
        operands=series("operand"), answers=series("answer"),
        op=metadata["op"], layout=metadata["layout"], prefix=metadata["prefix"],
        query=column("query") if "query" in keys else None,
        operand_count_B=counts["operand_count"], answer_count_B=counts["answer_count"])
    if checksum(problem) != metadata["checksum"]:
      raise ValueError("the problems do not match their checksum")
  except Exception as e:  # TFDS / array_record raise many types on damaged files.
    raise ValueError(f"training set at {path} is corrupt or truncated ({e!r}); nothing was deleted: "
                     "remove it by hand and write it again") from e
  return problem, [bytes(r["text"]).decode("ascii") for r in rows]
