"""Where a run's record also goes, besides metrics.jsonl: TensorBoard event files and Weights & Biases.

metrics.jsonl stays the source of truth; these sinks get a copy of every row it gets (and the
eval heatmaps as images) through `metrics.MetricsWriter`, on process 0 only. The config
section `logging` turns them on:

  logging.tensorboard=True   workdir/tensorboard/events.out.tfevents.*: scalars and heatmap images,
                             written without TensorFlow (`tensorboard --logdir=runs` shows every run)
  logging.wandb=True         a W&B run (project logging.wandb_project, named cfg.name, the config
                             as its config), offline unless the WANDB_MODE environment variable
                             says otherwise; it needs the `wandb` package (checked at start-up)

Neither changes what a run computes, so neither is part of a sweep point's config hash.

An event file is a sequence of TFRecords (length, masked CRC32C of the length, data, masked
CRC32C of the data), each holding one `tensorflow.Event` protobuf; the few messages and fields
used here are encoded by hand below (field numbers from TensorFlow's event.proto/summary.proto).
"""

import hashlib
import importlib
import os
import socket
import struct
import time
from typing import Mapping

import ml_collections

from arithlab.train import metrics as metrics_lib


def default_config() -> ml_collections.ConfigDict:
  """The `logging` section: every sink off (metrics.jsonl alone)."""
  return ml_collections.ConfigDict(dict(
      tensorboard=False,  # also write TensorBoard event files under workdir/tensorboard/
      wandb=False,  # also log to Weights & Biases (needs `pip install wandb`; offline unless WANDB_MODE is set)
      wandb_project="arithlab",  # the W&B project of logging.wandb
  ))


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the `logging` field when W&B is asked for but cannot be used."""
  if not cfg.wandb:
    return
  if not cfg.wandb_project:
    raise ValueError("logging.wandb_project is empty: name the W&B project, e.g. logging.wandb_project=arithlab")
  try:
    importlib.import_module("wandb")
  except ImportError as e:
    raise ValueError(f"logging.wandb=True but the wandb package cannot be imported ({e}): `pip install wandb`, "
                     "or set logging.wandb=False") from e


def _crc32c_table() -> tuple[int, ...]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return tuple(table)


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli) of `data`: crc32c(b"123456789") == 0xE3069283."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """The CRC TFRecord stores: CRC-32C rotated right by 15 bits plus a constant (mod 2^32)."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
  """One TFRecord: uint64 length, its masked CRC, the data, the data's masked CRC (little-endian)."""
  length = struct.pack("<Q", len(data))
  return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _varint(n: int) -> bytes:
  out = bytearray()
  while n > 0x7F:
    out.append(n & 0x7F | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def _int_field(number: int, n: int) -> bytes:
  return _varint(number << 3) + _varint(n)


def _bytes_field(number: int, data: bytes) -> bytes:
  return _varint(number << 3 | 2) + _varint(len(data)) + data


FILE_VERSION, SUMMARY, SESSION_LOG = 3, 5, 7  # the Event fields written here


def event(step: int, wall_time: float, field: int, data: bytes) -> bytes:
  """An encoded Event: wall_time, step and one of FILE_VERSION, SUMMARY or SESSION_LOG holding `data`."""
  return _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _int_field(2, step) + _bytes_field(field, data)


def scalar_value(tag: str, value: float) -> bytes:
  """A Summary.Value with simple_value (a float32, as TensorBoard's scalar plots read it)."""
  return _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)


def image_value(tag: str, png: bytes) -> bytes:
  """A Summary.Value with an Image (height, width from the PNG header, the encoded PNG)."""
  width, height = struct.unpack(">II", png[16:24])
  return _bytes_field(1, tag.encode()) + _bytes_field(
      4, _int_field(1, height) + _int_field(2, width) + _bytes_field(4, png))


def summary(values: list[bytes]) -> bytes:
  """A Summary of encoded Summary.Values."""
  return b"".join(_bytes_field(1, v) for v in values)


SESSION_START = _int_field(1, 1)  # SessionLog{status: START}


class TensorBoard:
  """A new event file in `logdir` per start of the run, flushed after every event.

  It opens with a SessionLog START at the step after the one the run starts (or resumes) from,
  which tells TensorBoard to drop what earlier files logged at that step or later: the steps a
  killed run logged past its last checkpoint are logged again by the resume, and shown once.
  """

  def __init__(self, logdir: str, start_step: int):
    os.makedirs(logdir, exist_ok=True)
    name = f"events.out.tfevents.{time.time():017.6f}.{socket.gethostname()}.{os.getpid()}"  # in start order
    self.path = os.path.join(logdir, name)
    self.file = open(self.path, "ab")
    self._write(event(0, time.time(), FILE_VERSION, b"brain.Event:2"))
    self._write(event(start_step + 1, time.time(), SESSION_LOG, SESSION_START))

  def _write(self, encoded: bytes) -> None:
    self.file.write(tfrecord(encoded))
    self.file.flush()

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self._write(event(step, time.time(), SUMMARY, summary([scalar_value(k, v) for k, v in values.items()])))

  def image(self, step: int, tag: str, png_path: str) -> None:
    with open(png_path, "rb") as f:
      self._write(event(step, time.time(), SUMMARY, summary([image_value(tag, f.read())])))

  def close(self) -> None:
    self.file.close()


def wandb_run_id(workdir: str) -> str:
  """The W&B run id of a run directory (from its absolute path): a resume logs to the same W&B run."""
  return hashlib.sha256(os.path.realpath(workdir).encode()).hexdigest()[:16]


class Wandb:
  """A W&B run for the run directory, offline unless WANDB_MODE says otherwise; its local files
  go to workdir/wandb/ (`wandb sync workdir/wandb/offline-run-*` uploads an offline run)."""

  def __init__(self, cfg: ml_collections.ConfigDict, workdir: str):
    self.wandb = importlib.import_module("wandb")
    self.run = self.wandb.init(project=cfg.logging.wandb_project, name=cfg.name, config=cfg.to_dict(), dir=workdir,
                               id=wandb_run_id(workdir), resume="allow",
                               mode=os.environ.get("WANDB_MODE", "offline"))

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self.run.log(dict(values), step=step)

  def image(self, step: int, tag: str, png_path: str) -> None:
    self.run.log({tag: self.wandb.Image(png_path)}, step=step)

  def close(self) -> None:
    self.run.finish()


def make_sinks(cfg: ml_collections.ConfigDict, workdir: str, start_step: int) -> list[metrics_lib.Sink]:
  """The sinks cfg.logging turns on, for a run (re)starting at `start_step`; call on process 0 only."""
  sinks: list[metrics_lib.Sink] = []
  if cfg.logging.tensorboard:
    sinks.append(TensorBoard(os.path.join(workdir, "tensorboard"), start_step))
  if cfg.logging.wandb:
    sinks.append(Wandb(cfg, workdir))
  return sinks
