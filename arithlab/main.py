"""Command-line entry point:

  python -m arithlab.main --config=experiments/quickstart.py[:arg] --workdir=DIR [--config.x=y ...]

Evaluate a run's checkpoint again (default: the latest), e.g. with an evaluation-time RoPE
scaling, into DIR/eval/<label>/ (training's files are left as they are):

  python -m arithlab.main --mode=evaluate --config=<the run's config> --workdir=DIR \
      --config.eval.rope_scaling=yarn:3:35 [--step=N]

Multi-host: start one process per host with the same flags plus --coordinator_address=HOST:PORT
--num_processes=N --process_id=I (on TPU pods and SLURM, jax.distributed finds them itself
with --distributed alone). The config is validated before anything is built.
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from arithlab import config, process
from arithlab.train import loop

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file, e.g. experiments/quickstart.py:smoke")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "run directory (config, metrics, checkpoints, eval); resumed if it holds checkpoints")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate"],
                          "train (or resume) the run, or evaluate its checkpoint into workdir/eval/<label>/")
_STEP = flags.DEFINE_integer("step", None, "--mode=evaluate: the checkpoint step (default: the latest)")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "call jax.distributed.initialize (implied by --coordinator_address)")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 for jax.distributed")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "number of processes for jax.distributed")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index for jax.distributed")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  process.keep_freed_memory()  # batches reuse mapped pages (benchmarks/RESULTS.md, data generation)
  if not flags.FLAGS["verbosity"].present:  # absl would default to INFO: orbax's per-save logs
    logging.set_verbosity(logging.WARNING)
  if _DISTRIBUTED.value or _COORDINATOR.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  if _MODE.value == "evaluate":
    summary = loop.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value, _STEP.value)
    if jax.process_index() == 0:
      print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
  else:
    loop.train(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main, flags_parser=config.parse_flags)
