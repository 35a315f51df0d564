"""data_gen.show: every example of its --help and of the README runs; bad flags name the flag."""

import pathlib
import re
import shlex

import pytest

from data_gen import show

REPO = pathlib.Path(__file__).resolve().parents[2]


def examples() -> list[str]:
  """The arguments of every `python -m data_gen.show ...` command in show's --help and the README."""
  text = show.__doc__ + (REPO / "README.md").read_text()
  return sorted(set(re.findall(r"python -m data_gen\.show([^`\n]*)", text)))


def test_help_and_readme_examples_run(capsys):
  assert len(examples()) >= 3
  for args in examples():
    show.main(shlex.split(args))
    assert "  pos " in capsys.readouterr().out, args


@pytest.mark.parametrize("task", ["addition", "multiplication", "sorting", "bucket_sort", "counting_successor",
                                  "counting_repeat"])
def test_every_task_shows_in_its_default_format(task, capsys):
  show.main([f"--task={task}", "-n", "1"])
  assert "  loss " in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--lengths=abc"], r"--lengths='abc': 'abc' is not an integer"),
    (["--lengths=len_0=1:x"], r"--lengths='len_0=1:x': 'x' is not an integer"),
    (["--position_options=max_pos=abc"], r"--position_options='max_pos=abc': 'abc' is not an integer"),
    (["--position_options=max_pos"], r"--position_options='max_pos': write key=integer entries"),
    (["--lengths=1:100000"], r"\(1, 100000\) exceeds the supported maximum length 10000"),
])
def test_bad_flags_exit_naming_the_flag(args, message):
  with pytest.raises(SystemExit, match=message):
    show.main(args)


def test_position_options_take_words_where_the_rule_option_is_a_word(capsys):
  show.main(["--positions=abacus", "--position_options=max_offset=5,offset_per=example", "-n", "2"])
  assert "  pos " in capsys.readouterr().out
  with pytest.raises(SystemExit, match=r"'five' is not an integer"):
    show.main(["--positions=abacus", "--position_options=max_offset=five"])
