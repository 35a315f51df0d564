"""Every `python -m ...` command the repository shows runs: in the markdown files, the module
docstrings (what --help prints), the benchmarks and the notebooks' text.

EXAMPLES (and two families of commands below it) says how each command runs, shrunk to seconds:
`:small` -> `:micro`, the quickstart -> `:smoke`, benchmarks -> `--smoke`, placeholders -> this
test's directories. Most run here, in this process (each program's main with its argv, one after
another, a run that a later command reads trained once); a few name the existing test that
already runs their shrunk form, and only their flags are parsed here. A command that EXAMPLES
does not know fails `test_every_example_is_in_the_table`, so no example goes untested; changing
an example's text means changing its entry.
"""

import ast
import contextlib
import importlib
import inspect
import os
import pathlib
import re
import shlex
import sys
import traceback
from unittest import mock

import pytest
from absl import flags

from arithlab import config

REPO = pathlib.Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"\bpython3? -m \S")
MARKDOWN = ("*.md", "docs/*.md", "benchmarks/*.md", "colab/*.md", "experiments/results/README.md")
DOCSTRINGS = ("arithlab/**/*.py", "data_gen/**/*.py", "benchmarks/*.py", "experiments/*.py")
NOTEBOOKS = "colab/*.py"  # jupytext's pairs of the .ipynb: the text cells are comment lines
PROGRAM_PACKAGES = ("arithlab", "benchmarks", "data_gen")


def commands_in(text: str) -> list[str]:
  """The `python -m ...` commands of a markdown text or docstring, whitespace collapsed: each in
  an inline code span, or from its line on to the end of the line and the more indented lines
  after it (a trailing `\\` also continues), without a trailing `# comment`; `&&` splits a chain."""
  text = "\n".join("" if line.lstrip().startswith("```") else line for line in text.splitlines())
  text = re.sub(r"\\\n\s*", " ", text)
  found = []

  def take_span(match: re.Match) -> str:
    if command := COMMAND.search(match.group(1)):
      found.append(match.group(1)[command.start():])
    return " "

  lines = re.sub(r"`([^`]+)`", take_span, text).splitlines()
  for i, line in enumerate(lines):
    if command := COMMAND.search(line):
      indent = len(line) - len(line.lstrip())
      parts = [line[command.start():]]
      for more in lines[i + 1:]:
        if not more.strip() or len(more) - len(more.lstrip()) <= indent:
          break
        parts.append(more)
      found.append(" ".join(re.sub(r"\s+#\s.*$", "", part) for part in parts))
  return [" ".join(part.split()) for cmd in found for part in cmd.split("&&") if COMMAND.match(part.strip())]


def found_examples() -> dict[str, list[str]]:
  """Every command the repository shows -> the files that show it."""
  texts = [(path, path.read_text()) for pattern in MARKDOWN for path in sorted(REPO.glob(pattern))]
  texts += [(path, ast.get_docstring(ast.parse(path.read_text())) or "")
            for pattern in DOCSTRINGS for path in sorted(REPO.glob(pattern))]
  texts += [(path, "\n".join(re.sub(r"^# ?", "", line) for line in path.read_text().splitlines()
                             if line.startswith("#"))) for path in sorted(REPO.glob(NOTEBOOKS))]
  examples = {}
  for path, text in texts:
    for command in commands_in(text):
      examples.setdefault(command, []).append(str(path.relative_to(REPO)))
  return examples


NOT_RUN = "not run: a set-up step"
QS = "--config=experiments/quickstart.py:smoke"
LEE = "--config=experiments/lee2023.py:micro"
LOOP_TEST = "tests/train/test_loop.py::test_main_writes_the_run_record"
REPORT_TEST = "tests/sweep/test_report.py::test_report_compares_any_run_directories"
DECODE_TEST = "tests/benchmarks/test_benchmarks_smoke.py::test_decode_cached_matches_recompute"
GRID_TEST = "tests/benchmarks/test_benchmarks_smoke.py::test_eval_grid_runs_one_shape_and_buckets_side_by_side"
STEP_TEST = "tests/benchmarks/test_benchmarks_smoke.py::test_train_step_without_torch_skips_the_comparison"
# Example -> how it runs, shrunk: a list of argument strings for its own program, each run here
# once, in this order (a command that reads a run comes after the one that writes it), {tmp} being
# a directory of the test; or "tests/...::test ARGS": that existing test runs the example in the
# shrunk form ARGS, which is only parsed here. Benchmarks shrink with --smoke, which overrides
# their shape flags (their bfloat16 forms are only parsed).
EXAMPLES = {
    "python -m arithlab.main --config=experiments/quickstart.py --workdir=runs/quickstart_seed1 --config.seed=1 "
    "--config.logging.tensorboard=True":
        [f"{QS} --workdir={{tmp}}/seed1 --config.seed=1 --config.logging.tensorboard=True"],
    "python -m arithlab.main --config=experiments/quickstart.py[:arg] --workdir=DIR [--config.x=y ...]":
        [f"{QS} --workdir={{tmp}}/seed1 --config.seed=1 --config.logging.tensorboard=True"],
    "python -m arithlab.main --config=experiments/quickstart.py --workdir=runs/quickstart":
        [f"{LOOP_TEST} {QS} --workdir={{tmp}}/run --config.train.steps=4"],
    "python -m arithlab.main --mode=evaluate --config=<its config> --workdir=<its dir> "
    "--config.eval.rope_scaling=yarn:3:35":
        [f"{LOOP_TEST} --mode=evaluate {QS} --workdir={{tmp}}/run --config.train.steps=4 "
         "--config.eval.rope_scaling=yarn:3:35 --step=4"],
    "python -m arithlab.main --mode=evaluate --config=<the run's config> --workdir=DIR "
    "--config.eval.rope_scaling=yarn:3:35 [--step=N]":
        [f"{LOOP_TEST} --mode=evaluate {QS} --workdir={{tmp}}/run --config.train.steps=4 "
         "--config.eval.rope_scaling=yarn:3:35 --step=4"],
    "python -m arithlab.main --mode=evaluate --config=experiments/rope_scaling.py:small "
    "--workdir=<the none point's directory> --config.eval.rope_scaling=yarn:3:35":
        [f"{LOOP_TEST} --mode=evaluate --config=experiments/rope_scaling.py:micro --workdir={{tmp}}/run "
         "--config.eval.rope_scaling=yarn:3:35"],
    "python -m arithlab.report --runs=runs/quickstart,runs/quickstart_seed1 --out=runs/compare":
        [f"{REPORT_TEST} --runs={{tmp}}/a,{{tmp}}/b --out={{tmp}}/compare"],
    "python -m arithlab.report --runs=DIR,DIR,...": [f"{REPORT_TEST} --runs={{tmp}}/a,{{tmp}}/b"],
    "python -m arithlab.report --runs=runs/a,runs/b[,'runs/sweep/points/*'] [--metric=eval/exact_ood] "
    "[--length_axis=max] [--out=DIR]":
        ["--runs='{tmp}/seed*' --metric=eval/exact_ood --length_axis=max --out={tmp}/compare"],
    "python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=DIR [--parallel=N] [--slurm "
    "[--sbatch=--gres=gpu:1 ...] [--distributed]] [--only=axis=label,...] [--report_only] [--config.x=y ...]":
        [f"{LEE} --workdir={{tmp}}/lee --parallel=2 --slurm --sbatch=--gres=gpu:1 --distributed "
         "--only=format=reverse --report_only --config.train.steps=3"],
    "python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=...":
        [f"{LEE} --workdir={{tmp}}/lee --slurm"],
    "python -m arithlab.sweep --config=experiments/<name>.py:small --workdir=DIR":
        [f"{LEE} --workdir={{tmp}}/lee --slurm"],
    "python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=DIR --only=format=reverse":
        [f"{LEE} --workdir={{tmp}}/lee --only=format=reverse --slurm"],
    "python -m arithlab.sweep --config=experiments/lee2023.py:small --workdir=DIR --only=format=reverse,plain "
    "--only=samples=10000 --parallel=2":  # :micro plans reverse at N = 1000 only
        [f"{LEE} --workdir={{tmp}}/lee --only=format=reverse --only=samples=1000 --parallel=2 --slurm"],
    "python -m arithlab.sweep ... --report_only": [f"{LEE} --workdir={{tmp}}/lee --report_only"],
    "python -m arithlab.sweep --config=<same> --workdir=DIR --point=I [--config.x=y ...]":
        ["tests/sweep/test_runner.py::test_slurm_script_and_parallel_subprocesses_run_the_same_point_command "
         f"{LEE} --workdir={{tmp}}/lee --point=0 --config.train.lr=0.01"],
    "python -m benchmarks.decode": [f"{DECODE_TEST} --smoke --cores=0"],
    "python -m benchmarks.decode --smoke": [f"{DECODE_TEST} --smoke --cores=0"],
    "python -m benchmarks.decode --cores=0": [f"{DECODE_TEST} --cores=0 --smoke"],
    "python -m benchmarks.decode --digits=100 --batch=64 --dtype=bfloat16":
        [f"{DECODE_TEST} --digits=100 --batch=64 --dtype=bfloat16 --smoke --cores=0"],
    "python -m benchmarks.eval_grid": [f"{GRID_TEST} --smoke --cores=0"],
    "python -m benchmarks.eval_grid --smoke": [f"{GRID_TEST} --smoke --cores=0"],
    "python -m benchmarks.eval_grid --max-len=16 --n-per-cell=8":
        [f"{GRID_TEST} --max-len=16 --n-per-cell=8 --smoke --cores=0"],
    "python -m benchmarks.eval_grid --max-len=30 --n-per-cell=2":
        [f"{GRID_TEST} --max-len=30 --n-per-cell=2 --smoke --cores=0"],
    "python -m benchmarks.train_step": [f"{STEP_TEST} --smoke --cores=0 --dtypes=float32"],
    "python -m benchmarks.train_step --smoke": [f"{STEP_TEST} --smoke --cores=0 --dtypes=float32"],
    "python -m benchmarks.train_step --profile": [f"{STEP_TEST} --profile --smoke --cores=0 --dtypes=float32"],
    "python -m benchmarks.train_step --models=lee --dtypes=bfloat16 --batch=64 --seq=256 --profile":
        [f"{STEP_TEST} --models=lee --dtypes=bfloat16 --batch=64 --seq=256 --profile --smoke --cores=0"],
    "python -m benchmarks.data_gen": [""],  # all three shrunk by SHRUNK_CONSTANTS
    "python -m benchmarks.data_gen --default-malloc": ["--default-malloc"],
    "python -m benchmarks.data_gen --profile": ["--profile"],
    "python3 -m venv .venv": NOT_RUN,
}
# Whole families. data_gen.show: every example runs as it is (milliseconds each). An experiment
# file's sweep: here its :micro budget with --slurm (flags, every point's config, the job script
# and the report, nothing trained); the training is tests/sweep/test_experiments.py's.
SHOW = re.compile(r"python -m data_gen\.show(.*)")
EXPERIMENT_SWEEP = re.compile(r"python -m arithlab\.sweep --config=experiments/(\w+)\.py:small --workdir=runs/\w+")
EXPERIMENTS_TEST = "tests/sweep/test_experiments.py::test_micro_sweep_runs_end_to_end"
# Module constants that shrink a benchmark that has no --smoke flag (a batch of 8, one short window).
SHRUNK_CONSTANTS = {"benchmarks.data_gen": {"BATCH": 8, "WINDOWS": 1, "WINDOW_SECONDS": 0.001}}


def plan(command: str) -> list[str] | str | None:
  """How `command` runs (as in EXAMPLES), NOT_RUN, or None when nothing here knows it."""
  if command in EXAMPLES:
    return EXAMPLES[command]
  if show := SHOW.fullmatch(command):
    return [show.group(1).strip()]
  if sweep := EXPERIMENT_SWEEP.fullmatch(command):
    name = sweep.group(1)
    args = f"--config=experiments/{name}.py:micro --workdir={{tmp}}/{name}"
    return [f"{args} --slurm", f"{EXPERIMENTS_TEST}[{name}.py] {args}"]
  return None


def program(command: str) -> str:
  return command.split()[2]


def steps(command: str) -> list[tuple[str, str, str]]:
  """(program, existing test or "", argument string) of each shrunk form of `command`."""
  shrunk = plan(command)
  if not isinstance(shrunk, list):
    return []
  forms = []
  for item in shrunk:
    test, _, args = item.partition(" ") if item.startswith("tests/") else ("", "", item)
    forms.append((program(command), test, args))
  return forms


@contextlib.contextmanager
def only_its_flags(name: str):
  """Yields the entry point `name` imported with its own flags defined and no other program's, as
  when it is the program: arithlab.main defines its flags on import, sweep and report in
  define_flags (their --config and --workdir would clash with main's). Afterwards the flags are
  as before."""
  before = {flag: flags.FLAGS[flag] for flag in flags.FLAGS}
  for flag in before:
    if flags.FLAGS.find_module_defining_flag(flag, "").split(".")[0] in PROGRAM_PACKAGES:
      delattr(flags.FLAGS, flag)
  imported = name in sys.modules
  try:
    module = importlib.import_module(name)
    if hasattr(module, "define_flags"):
      module.define_flags()
    elif imported and hasattr(module, "flags"):
      module = importlib.reload(module)  # defines its flags again
    yield module
  finally:
    flags.FLAGS.unparse_flags()
    for flag in list(flags.FLAGS):
      if before.get(flag) is not flags.FLAGS[flag]:
        delattr(flags.FLAGS, flag)
    for flag, value in before.items():
      if flag not in flags.FLAGS:
        flags.FLAGS[flag] = value


def run_program(name: str, args: list[str], parse_only: bool = False) -> None:
  """Runs `python -m name *args` in this process (or only parses its flags). Raises what it
  raises; a SystemExit with an error status is an error too. Process-wide settings stay as they
  are (glibc's heap, the CPUs the process may use, the environment)."""
  with only_its_flags(name) as module, contextlib.ExitStack() as stack:
    for constant, value in SHRUNK_CONSTANTS.get(name, {}).items():
      stack.enter_context(mock.patch.object(module, constant, value))
    if hasattr(module, "keep_freed_memory"):
      stack.enter_context(mock.patch.object(module, "keep_freed_memory", return_value=False))
    stack.enter_context(mock.patch("arithlab.process.keep_freed_memory", return_value=False))
    stack.enter_context(mock.patch.object(os, "sched_setaffinity", lambda *_: None, create=True))
    stack.enter_context(mock.patch.dict(os.environ))
    stack.enter_context(mock.patch.object(sys, "argv", [f"{name.replace('.', '/')}.py", *args]))
    try:
      if hasattr(module, "flags"):  # absl: parse the flags, then main(the arguments left)
        left = config.parse_flags(sys.argv)
        if not parse_only:
          module.main(left)
      elif parse_only:
        module.parse(args)
      elif inspect.signature(module.main).parameters:
        module.main(args)
      else:
        module.main()
    except SystemExit as e:
      if e.code not in (None, 0):
        raise


def fill(args: str, tmp: pathlib.Path) -> list[str]:
  """The argument list of a shrunk command, its {tmp} replaced by tmp."""
  return shlex.split(args.replace("{tmp}", str(tmp)))


EXAMPLES_FOUND = found_examples()


def test_every_example_is_in_the_table():
  unknown = [command for command in EXAMPLES_FOUND if plan(command) is None]
  assert not unknown, (f"commands shown in the repository that {__name__} does not know: add each to EXAMPLES "
                       f"(how it runs here, shrunk): {unknown} (shown in {[EXAMPLES_FOUND[c] for c in unknown]})")
  stale = [command for command in EXAMPLES if command not in EXAMPLES_FOUND]
  assert not stale, f"EXAMPLES entries no file shows any more: {stale}"
  assert len(EXAMPLES_FOUND) >= 40 and any(SHOW.fullmatch(c) for c in EXAMPLES_FOUND)


def test_examples_run_here(tmp_path, monkeypatch):
  """Every shrunk command that runs here, each once, in EXAMPLES' order, then the families'. One
  test, not one per example: a module-scoped fixture would run again on each pytest-xdist worker."""
  monkeypatch.chdir(REPO)
  monkeypatch.syspath_prepend(str(REPO))  # `benchmarks` is a folder of scripts, not an installed package
  failed, done = {}, set()
  for command in [*EXAMPLES, *EXAMPLES_FOUND]:
    for name, test, args in steps(command):
      if test or (name, args) in done:
        continue
      done.add((name, args))
      try:
        run_program(name, fill(args, tmp_path))
      except (Exception, SystemExit):  # noqa: BLE001: every failing example is reported
        failed[f"{command}\n  shrunk: python -m {name} {args}"] = traceback.format_exc()
  assert not failed, "examples that fail:\n" + "\n".join(f"{k}\n{v}" for k, v in failed.items())
  assert len(done) >= 20


@pytest.mark.parametrize("command", [c for c in sorted(EXAMPLES_FOUND) if any(test for _, test, _ in steps(c))])
def test_examples_run_elsewhere(command, monkeypatch, tmp_path):
  """An example whose shrunk form an existing test runs: that test exists and the form's flags parse."""
  monkeypatch.chdir(REPO)
  monkeypatch.syspath_prepend(str(REPO))
  for name, test, args in steps(command):
    if not test:
      continue
    path, _, function = test.partition("::")
    function, _, param = function.partition("[")
    source = (REPO / path).read_text()
    body = next((ast.get_source_segment(source, node) for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.FunctionDef) and node.name == function), None)
    assert body, f"{test} does not exist"
    assert name in body or re.search(rf"\b{name.rsplit('.', 1)[-1]}\.(main|run)\(", body), f"{test} runs no {name}"
    assert not param or f'"{param.rstrip("]")}"' in source, f"{test}: {param} is not among its parameters"
    run_program(name, fill(args, tmp_path), parse_only=True)
