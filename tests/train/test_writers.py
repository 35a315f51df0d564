"""The record's copies: TensorBoard event files (read back by our own TFRecord/protobuf reader,
and by TensorBoard's own when it is installed) and W&B (a fake `wandb` module), fed from the
one place metrics rows are written; `logging` validated at start-up and never hashed."""

import glob
import importlib.util
import os
import pathlib
import shutil
import struct
import sys
import types

import numpy as np
import pytest
from matplotlib.figure import Figure

from arithlab import config, sweep
from arithlab.train import loop
from arithlab.train import metrics as metrics_lib
from arithlab.train import writers

REPO = pathlib.Path(__file__).resolve().parents[2]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = data[pos]
    value |= (byte & 0x7F) << shift
    pos, shift = pos + 1, shift + 7
    if byte < 0x80:
      return value, pos


def decode(message: bytes) -> dict[int, list]:
  """Protobuf wire format: field number -> its values (varints as int, fixed64/fixed32 and
  length-delimited fields as bytes)."""
  fields: dict[int, list] = {}
  pos = 0
  while pos < len(message):
    key, pos = _varint(message, pos)
    wire = key & 7
    if wire == 0:
      value, pos = _varint(message, pos)
    elif wire in (1, 5):
      size = 8 if wire == 1 else 4
      value, pos = message[pos:pos + size], pos + size
    else:
      assert wire == 2, f"unexpected wire type {wire}"
      size, pos = _varint(message, pos)
      value, pos = message[pos:pos + size], pos + size
    fields.setdefault(key >> 3, []).append(value)
  return fields


def read_records(path: str) -> list[bytes]:
  """The TFRecords of a file, each length and payload checked against its masked CRC32C."""
  with open(path, "rb") as f:
    data = f.read()
  records, pos = [], 0
  while pos < len(data):
    header = data[pos:pos + 8]
    (size,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == writers.masked_crc32c(header)
    payload = data[pos + 12:pos + 12 + size]
    assert struct.unpack("<I", data[pos + 12 + size:pos + 16 + size])[0] == writers.masked_crc32c(payload)
    records.append(payload)
    pos += 16 + size
  return records


def read_events(logdir: str) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], bytes], list[int]]:
  """What TensorBoard shows of a log directory: ({(step, tag): scalar}, {(step, tag): PNG}, the
  steps of the SessionLog STARTs), reading the files in name order and dropping, at each START,
  what was logged at its step or later."""
  scalars, images, starts = {}, {}, []
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    records = [decode(r) for r in read_records(path)]
    assert records[0][3] == [b"brain.Event:2"]
    for event in records[1:]:
      step = event.get(2, [0])[0]
      assert struct.unpack("<d", event[1][0])[0] > 1e9  # wall time
      if 7 in event:
        assert decode(event[7][0]) == {1: [1]}  # session_log, status START
        starts.append(step)
        scalars = {k: v for k, v in scalars.items() if k[0] < step}
        images = {k: v for k, v in images.items() if k[0] < step}
      for value in decode(event[5][0]).get(1, []) if 5 in event else []:
        value = decode(value)
        tag = value[1][0].decode()
        if 2 in value:
          scalars[step, tag] = struct.unpack("<f", value[2][0])[0]
        else:
          image = decode(value[4][0])
          png = image[4][0]
          assert (image[2][0], image[1][0]) == struct.unpack(">II", png[16:24])  # width, height
          images[step, tag] = png
  return scalars, images, starts


class FakeWandb(types.ModuleType):
  """The parts of `wandb` the W&B sink uses, recording what it is given."""

  class Image:
    def __init__(self, path: str):
      self.path = path

  class Run:
    def __init__(self, kwargs):
      self.kwargs, self.logged, self.finished = kwargs, [], False

    def log(self, values, step):
      self.logged.append((step, values))

    def finish(self):
      self.finished = True

  def __init__(self):
    super().__init__("wandb")
    self.runs = []

  def init(self, **kwargs):
    self.runs.append(self.Run(kwargs))
    return self.runs[-1]


@pytest.fixture
def fake_wandb(monkeypatch):
  module = FakeWandb()
  monkeypatch.setitem(sys.modules, "wandb", module)
  monkeypatch.delenv("WANDB_MODE", raising=False)
  return module


def smoke_config():
  """The quickstart's :smoke run (as in test_loop, so that its programs come from the compilation cache)."""
  spec = importlib.util.spec_from_file_location("quickstart", REPO / "experiments" / "quickstart.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("smoke")


def png_file(tmp_path):
  """A 100x50 PNG."""
  fig = Figure(figsize=(2, 1), dpi=50)
  fig.subplots().plot([0, 1])
  fig.savefig(tmp_path / "x.png")
  return tmp_path / "x.png"


def test_crc32c_known_answers():
  assert writers.crc32c(b"") == 0
  assert writers.crc32c(b"123456789") == 0xE3069283
  assert writers.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
  assert writers.crc32c(b"\xff" * 32) == 0x62A8AB43
  assert writers.masked_crc32c(b"") == 0xA282EAD8


def test_tensorboard_files_hold_every_row_and_image(tmp_path):
  png = png_file(tmp_path)
  logdir = str(tmp_path / "tb")
  first = writers.TensorBoard(logdir, 0)
  first.scalars(1, {"loss": 2.5, "lr": 1e-3})
  first.scalars(2, {"loss": 2.0})
  first.scalars(3, {"loss": 1.5})  # logged past the last checkpoint (2) before a kill
  first.close()
  resumed = writers.TensorBoard(logdir, 2)
  resumed.scalars(3, {"loss": 1.25})
  resumed.image(3, "eval/heatmap", str(png))
  resumed.close()
  scalars, images, starts = read_events(logdir)
  assert starts == [1, 3]
  assert scalars == {(1, "loss"): 2.5, (1, "lr"): np.float32(1e-3), (2, "loss"): 2.0, (3, "loss"): 1.25}
  assert images == {(3, "eval/heatmap"): png.read_bytes()}


def test_tensorboards_own_reader_reads_our_files(tmp_path):
  event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
  png = png_file(tmp_path)
  logdir = str(tmp_path / "tb")
  first = writers.TensorBoard(logdir, 0)
  for step in (1, 2, 3):
    first.scalars(step, {"loss": float(step)})
  first.close()
  resumed = writers.TensorBoard(logdir, 2)
  resumed.scalars(3, {"loss": 30.0})
  resumed.image(3, "eval/heatmap", str(png))
  resumed.close()
  acc = event_accumulator.EventAccumulator(logdir, size_guidance={event_accumulator.IMAGES: 0,
                                                                  event_accumulator.SCALARS: 0})
  acc.Reload()
  assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]
  [image] = acc.Images("eval/heatmap")
  assert (image.step, image.width, image.height) == (3, 100, 50)
  assert image.encoded_image_string == png.read_bytes()


def test_metrics_writer_fans_out_to_its_sinks(tmp_path, fake_wandb):
  cfg = config.default_config()
  cfg.logging.update(tensorboard=True, wandb=True, wandb_project="lab")
  sinks = writers.make_sinks(cfg, str(tmp_path), 0)
  assert [type(s) for s in sinks] == [writers.TensorBoard, writers.Wandb]
  writer = metrics_lib.MetricsWriter(str(tmp_path), sinks)
  writer.write(5, {"loss": np.float32(0.5)})
  writer.write_image(5, "eval/heatmap", str(png_file(tmp_path)))
  writer.close()
  assert metrics_lib.read_metrics(str(tmp_path)) == [{"step": 5, "loss": 0.5}]
  scalars, images, _ = read_events(str(tmp_path / "tensorboard"))
  assert scalars == {(5, "loss"): 0.5} and list(images) == [(5, "eval/heatmap")]
  [run] = fake_wandb.runs
  assert run.kwargs["mode"] == "offline" and run.kwargs["project"] == "lab" and run.kwargs["name"] == cfg.name
  assert run.kwargs["config"] == cfg.to_dict() and run.kwargs["dir"] == str(tmp_path)
  assert run.logged[0] == (5, {"loss": 0.5})
  assert run.logged[1][0] == 5 and run.logged[1][1]["eval/heatmap"].path == str(tmp_path / "x.png")
  assert run.finished


def test_wandb_mode_comes_from_the_environment(tmp_path, fake_wandb, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "online")
  cfg = config.default_config()
  cfg.logging.wandb = True
  writers.Wandb(cfg, str(tmp_path))
  writers.Wandb(cfg, os.path.join(str(tmp_path), "."))
  first, again = fake_wandb.runs
  assert first.kwargs["mode"] == "online"
  assert first.kwargs["id"] == again.kwargs["id"] and first.kwargs["resume"] == "allow"  # a resume: the same run


def test_logging_is_validated_at_start_up(tmp_path, monkeypatch):
  cfg = smoke_config()
  cfg.logging.wandb = True
  monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
  with pytest.raises(ValueError, match=r"logging.wandb=True but the wandb package cannot be imported.*pip install wandb"):
    loop.train(cfg, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")  # refused before anything was written
  monkeypatch.setitem(sys.modules, "wandb", FakeWandb())
  cfg.logging.wandb_project = ""
  with pytest.raises(ValueError, match="logging.wandb_project is empty"):
    config.validate(cfg, device_count=1)


def test_sinks_change_no_sweep_point_directory():
  cfg = config.default_config()
  cfg.logging.update(tensorboard=True, wandb=True, wandb_project="other")
  assert sweep.config_hash(cfg) == sweep.config_hash(config.default_config())


def test_a_run_and_its_resume_write_every_row_to_tensorboard_and_wandb(tmp_path, fake_wandb):
  cfg = smoke_config()  # 6 steps: train rows every 2, eval and checkpoint every 3
  cfg.logging.update(tensorboard=True, wandb=True)
  cfg.checkpoint.keep = 2
  workdir = str(tmp_path / "run")
  loop.train(cfg, workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints", "6"))  # as if killed after logging step 6, before its save
  loop.train(cfg, workdir)  # resumes from step 3
  rows = metrics_lib.read_metrics(workdir)
  assert [r["step"] for r in rows] == [2, 3, 4, 6, 6]  # train 2, eval 3, train 4, train 6, eval 6
  scalars, images, starts = read_events(os.path.join(workdir, "tensorboard"))
  assert starts == [1, 4]
  assert scalars == {(r["step"], k): np.float32(v) for r in rows for k, v in r.items() if k != "step"}
  assert sorted(images) == [(3, "eval/heatmap"), (6, "eval/heatmap")]
  for step, tag in images:
    with open(os.path.join(workdir, "eval", f"grid_{step:07d}.png"), "rb") as f:
      assert images[step, tag] == f.read()
  first, resumed = fake_wandb.runs
  assert first.kwargs["id"] == resumed.kwargs["id"] and first.finished and resumed.finished
  logged = {}
  for run in (first, resumed):
    for step, values in run.logged:
      logged.setdefault(step, {}).update(values)
  for r in rows:
    assert {k: logged[r["step"]][k] for k in r if k != "step"} == {k: v for k, v in r.items() if k != "step"}
  assert logged[6]["eval/heatmap"].path == os.path.join(workdir, "eval", "grid_0000006.png")
