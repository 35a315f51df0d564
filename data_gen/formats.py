"""Formats: how a `Problem` is written as a `Text`, chosen by one string of composable switches.

`parse_format("reverse_answer+dollar")` gives a `FormatSpec`; `render(problem, spec, rng)`
writes the batch. The Text's target_BxT marks what the model must produce: the answer with
everything after it (scratchpad, closing `$`, ` E`), always a suffix of the row; the prompt
is the rest. (Whether the loss covers the prompt too is the pipeline's choice.)

Switches (examples for 128+367 unless stated):
  plain                 128+367=495 (the default; no other switch may accompany it)
  reverse_answer        128+367=594 (answer least-significant digit first; Lee et al.)
  reverse_operands      821+763=495
  dollar                $128+367=495$ (Lee et al.'s delimiters, an axis of its own)
  pad / pad<N>          zero padding (Shen et al.): operands to N digits (pad15:
                        000000000000128+000000000000367=0000000000000495), or with bare `pad`
                        to the longest operand of the example; the answer to the longest
                        possible answer at that width (addition of n operands:
                        width + digits(n - 1), so width + 1 for two; multiplication:
                        n * width). A width below an operand length is a ValueError.
  index_hints           c1b2a8+c3b6a7=c4b9a5: before every digit a hint naming its
                        significance (a = units, b = tens, ... z, then A..Z for the first 52
                        digits; then two letters aa, ab, ..., aZ, ba, ...: numbers of any
                        length, see text.index_hint), on operands and answer, as the number
                        cookbook (GraphPKU/number_cookbook) counts from the units digit; with
                        reverse_operands 321+654 is written a1b2c3+a4b5c6
                        (docs/methods.md#index-hints).
  random_spaces         Shen et al.: every gap between two prompt characters (none next to
                        a newline) independently gets one space with probability 1/2; the
                        answer is never touched. Needs rng.
  scratchpad_simple     Lee et al.'s simplified scratchpad (see scratchpads.py)
  scratchpad_detailed   Lee et al.'s detailed scratchpad (addition and multiplication)
  scratchpad_recursive  a recursive scratchpad stripping one digit per step (Shen et al.)
  natural_language      one of a few fixed sentences around the problem, per row by rng:
                        `What is 128 plus 367? The answer is 495.`

Non-arithmetic tasks have their own layouts (text.Problem.layout):
  list          S 5 3 9 1 > 1 3 5 9 E         (sorting; prefix letter = task)
                H 5 3 9 1 ? 3 > 5 E           (hint tasks: the query after `?`)
  repeat        R a a a > 1 2 3 E             (counting_repeat)
  digit_string  10204112 -> 00111224          (bucket_sort)
and accept only the switches listed in LAYOUT_SWITCHES. Every character a format emits is
printable ASCII or a newline.
"""

import dataclasses
import re

import numpy as np

from data_gen import scratchpads
from data_gen.registry import Registry
from data_gen.text import (PAD_RECORD, Number, Problem, Slot, Text, assemble, assemble_slots, choice_slot,
                           list_slot, literal_slot, number_slot, record, records_text, repeat_slot, text_records)

HINT_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPACE_PROBABILITY = 0.5

SWITCHES = ("plain", "reverse_answer", "reverse_operands", "dollar", "pad", "pad<N>", "index_hints",
            "random_spaces", "scratchpad_simple", "scratchpad_detailed", "scratchpad_recursive",
            "natural_language")
SCRATCHPADS = Registry("scratchpad")
SCRATCHPADS.register("simple")(scratchpads.simple)
SCRATCHPADS.register("detailed")(scratchpads.detailed)
SCRATCHPADS.register("recursive")(scratchpads.recursive)

# Natural-language templates: (before the operands, between operands, after the operands,
# after the answer). The last part is a target.
NL_TEMPLATES = {
    "+": (("What is ", " plus ", "? The answer is ", "."),
          ("The sum of ", " and ", " is ", "."),
          ("Compute ", " + ", ". Result: ", ""),
          ("If you add ", " and ", ", you get ", "."),
          ("Q: How much is ", " plus ", "?\nA: ", "")),
    "*": (("What is ", " times ", "? The answer is ", "."),
          ("The product of ", " and ", " is ", "."),
          ("Compute ", " * ", ". Result: ", ""),
          ("If you multiply ", " by ", ", you get ", "."),
          ("Q: How much is ", " times ", "?\nA: ", "")),
}


@dataclasses.dataclass(frozen=True)
class FormatSpec:
  """A parsed format: which switches are on (see the module docstring).

  pad_width: with pad, the fixed width (pad<N>), or None for the example's longest operand.
  scratchpad: None, "simple", "detailed" or "recursive".
  """

  reverse_answer: bool = False
  reverse_operands: bool = False
  dollar: bool = False
  pad: bool = False
  pad_width: int | None = None
  index_hints: bool = False
  random_spaces: bool = False
  scratchpad: str | None = None
  natural_language: bool = False

  def switches(self) -> tuple[str, ...]:
    """The names of the switches that are on ("pad" for pad and pad<N>; () for plain)."""
    on = [name for name in ("reverse_answer", "reverse_operands", "dollar", "pad", "index_hints",
                            "random_spaces", "natural_language") if getattr(self, name)]
    if self.scratchpad:
      on.append(f"scratchpad_{self.scratchpad}")
    return tuple(on)


LAYOUT_SWITCHES = {
    "arithmetic": set(SWITCHES),
    "list": {"reverse_answer", "reverse_operands", "index_hints", "random_spaces"},
    "repeat": {"reverse_answer", "index_hints", "random_spaces"},
    "digit_string": {"random_spaces"},
}
_SCRATCHPAD_EXCLUDES = ("reverse_answer", "reverse_operands", "dollar", "pad", "index_hints",
                        "natural_language")


def parse_format(spec: str) -> FormatSpec:
  """Parses switches joined by "+" (e.g. "reverse_answer+dollar", "pad15+reverse_answer").

  Raises:
    ValueError: an unknown switch (listing the valid ones), a repeated switch, or a
      contradictory combination (plain with others, two scratchpads, a scratchpad with a
      switch that changes how numbers are written, natural_language with dollar).
  """
  names = spec.split("+") if spec else ["plain"]
  fields = {}
  for name in names:
    match = re.fullmatch(r"pad(\d+)", name)
    if name not in SWITCHES and not match:
      raise ValueError(f"format switch {name!r} unknown in {spec!r}; choose from: {', '.join(SWITCHES)}")
    key = "pad" if match else name
    if key in fields or (key.startswith("scratchpad_") and "scratchpad" in fields):
      raise ValueError(f"format {spec!r} repeats or contradicts switch {name!r}")
    if match:
      width = int(match.group(1))
      if width < 1:
        raise ValueError(f"padding width {width} in {spec!r} must be >= 1")
      fields["pad"], fields["pad_width"] = True, width
    elif key.startswith("scratchpad_"):
      fields["scratchpad"] = key.removeprefix("scratchpad_")
    else:
      fields[key] = True
  if "plain" in fields and len(names) > 1:
    raise ValueError(f"format {spec!r}: 'plain' means no switches; drop it or the others")
  fields.pop("plain", None)
  parsed = FormatSpec(**fields)
  clash = [n for n in _SCRATCHPAD_EXCLUDES if getattr(parsed, n)]
  if parsed.scratchpad and clash:
    raise ValueError(f"format {spec!r}: a scratchpad fixes how numbers are written; it cannot "
                     f"be combined with {clash}")
  if parsed.natural_language and parsed.dollar:
    raise ValueError(f"format {spec!r}: natural_language has its own delimiters; drop 'dollar'")
  return parsed


def render(problem: Problem, spec: FormatSpec | str, rng: np.random.Generator | None = None) -> Text:
  """Writes a batch of problems.

  Args:
    problem: a batch from a task.
    spec: a FormatSpec or a format string (parsed with parse_format).
    rng: needed by random_spaces and natural_language.
  Returns:
    The Text [B, T] (target_BxT True on the answer part, a suffix of every row).
  Raises:
    ValueError: a switch the problem's layout does not take, a padding width below an
      operand length, a scratchpad the task does not have, a missing rng.
  """
  if isinstance(spec, str):
    spec = parse_format(spec)
  unsupported = [s for s in spec.switches() if s not in LAYOUT_SWITCHES[problem.layout]]
  if unsupported:
    raise ValueError(f"format switch(es) {unsupported} do not apply to layout {problem.layout!r}; "
                     f"it takes: {sorted(LAYOUT_SWITCHES[problem.layout])}")
  if (spec.random_spaces or spec.natural_language) and rng is None:
    raise ValueError("formats with random_spaces or natural_language need an rng")
  if spec.scratchpad:
    text = assemble(SCRATCHPADS.get(spec.scratchpad)(problem))
  else:
    text = _LAYOUTS[problem.layout](problem, spec, rng)
  return insert_random_spaces(text, rng) if spec.random_spaces else text


def _hints(spec: FormatSpec) -> str:
  return HINT_LETTERS if spec.index_hints else ""


def _answer_width(op: str, n_operands: int, width):
  """The longest possible answer of n operands of `width` digits (int or int [B])."""
  if op == "+":
    return width + len(str(n_operands - 1))
  if op == "*":
    return n_operands * width
  raise ValueError(f"padding is defined for ops '+' and '*'; got op {op!r}")


def _arithmetic(problem: Problem, spec: FormatSpec, rng) -> Text:
  """`[$]a+b+...=answer[$]`, or a natural-language sentence around it."""
  operands, (answer,) = problem.operands, problem.answers
  n = len(operands)
  width = answer_width = None
  if spec.pad:
    width = spec.pad_width or np.max(np.stack([o.length_B for o in operands]), axis=0)
    answer_width = _answer_width(problem.op, n, width)
  hints = _hints(spec)
  if spec.natural_language:
    templates = NL_TEMPLATES.get(problem.op)
    if templates is None:
      raise ValueError(f"natural_language has templates for ops {sorted(NL_TEMPLATES)}; got {problem.op!r}")
    choice_B = rng.integers(0, len(templates), problem.batch)
    before, between, after, close = (choice_slot([t[i] for t in templates], choice_B, target=(i == 3))
                                     for i in range(4))
  else:
    before = literal_slot("$") if spec.dollar else None
    between, after = literal_slot(problem.op), literal_slot("=")
    close = literal_slot("$", target=True) if spec.dollar else None
  slots = [before] if before else []
  for k, operand in enumerate(operands):
    slots += [between] * (k > 0)
    slots.append(number_slot(operand, k, reverse=spec.reverse_operands, width=width, hints=hints))
  slots += [after, number_slot(answer, n, reverse=spec.reverse_answer, width=answer_width, hints=hints,
                               target=True)]
  return assemble_slots(slots + ([close] if close else []))


def _count(numbers: tuple[Number, ...], count_B: np.ndarray | None) -> np.ndarray:
  """int [B]: how many of the numbers each row writes (all of them when count_B is None)."""
  return np.full(numbers[0].batch, len(numbers)) if count_B is None else count_B


def _stack(numbers: tuple[Number, ...], count_B: np.ndarray | None):
  """Numbers as digits [B, K, W], lengths [B, K] (0 for k >= count_B) and the count [B]."""
  width = max(n.digits_BxW.shape[1] for n in numbers)
  digits = np.zeros((numbers[0].batch, len(numbers), width), np.int8)
  for k, n in enumerate(numbers):
    digits[:, k, :n.digits_BxW.shape[1]] = n.digits_BxW
  lengths = np.stack([n.length_B for n in numbers], 1)
  count_B = _count(numbers, count_B)
  return digits, np.where(np.arange(len(numbers)) < count_B[:, None], lengths, 0), count_B


def _items(numbers, count_B, first_index_B, *, reverse: bool, hints: str, target: bool) -> Slot:
  """A space-separated list of the first count_B[b] numbers, indexed from first_index_B."""
  digits, lengths, count_B = _stack(numbers, count_B)
  return list_slot(digits, lengths, first_index_B, reverse=reverse, hints=hints, target=target, after=" ",
                   after_BxK=np.arange(len(numbers)) < count_B[:, None] - 1)


def _answer_list(problem: Problem, spec: FormatSpec, first_index_B: np.ndarray) -> list[Slot]:
  """` > 1 3 5 9 E`: the answers (a target, closed by ` E`)."""
  return [literal_slot(" > "),
          _items(problem.answers, problem.answer_count_B, first_index_B, reverse=spec.reverse_answer,
                 hints=_hints(spec), target=True),
          literal_slot(" E", target=True)]


def _list(problem: Problem, spec: FormatSpec, rng) -> Text:
  """`S 5 3 9 1 > 1 3 5 9 E`, with ` ? query` before ` > ` for hint tasks."""
  hints = _hints(spec)
  count_B = _count(problem.operands, problem.operand_count_B)
  slots = [literal_slot(problem.prefix + " "),
           _items(problem.operands, problem.operand_count_B, np.zeros_like(count_B),
                  reverse=spec.reverse_operands, hints=hints, target=False)]
  next_index_B = count_B
  if problem.query is not None:
    slots += [literal_slot(" ? "), number_slot(problem.query, count_B, reverse=spec.reverse_operands, hints=hints)]
    next_index_B = count_B + 1
  return assemble_slots(slots + _answer_list(problem, spec, next_index_B))


def _repeat(problem: Problem, spec: FormatSpec, rng) -> Text:
  """`R a a a > 1 2 3 E`: n copies of the symbol, then 1..n."""
  count_B = problem.answer_count_B
  slots = [literal_slot(problem.prefix), repeat_slot(f" {problem.op}", count_B)]
  return assemble_slots(slots + _answer_list(problem, spec, np.zeros_like(count_B)))


def _digit_string(problem: Problem, spec: FormatSpec, rng) -> Text:
  """`10204112 -> 00111224`."""
  return assemble_slots([number_slot(problem.operands[0], 0), literal_slot(" -> "),
                         number_slot(problem.answers[0], 1, target=True)])


_LAYOUTS = {"arithmetic": _arithmetic, "list": _list, "repeat": _repeat, "digit_string": _digit_string}

_SPACE = record(" ")


def insert_random_spaces(text: Text, rng: np.random.Generator, probability: float = SPACE_PROBABILITY) -> Text:
  """Shen et al.'s random spaces: each gap between two prompt characters (neither a newline)
  independently gets one space with `probability`. Target characters are untouched.
  """
  batch, t = text.chars_BxT.shape
  prompt = (np.arange(t) < text.length_B[:, None]) & ~text.target_BxT & (text.chars_BxT != ord("\n"))
  gap = np.zeros((batch, t), bool)
  gap[:, 1:] = prompt[:, 1:] & prompt[:, :-1]
  insert = gap & (rng.random((batch, t)) < probability)
  shift = np.cumsum(insert, axis=1)
  length_B = text.length_B + shift[:, -1]
  width = max(int(length_B.max()), 1)
  out = np.where(np.arange(width) < length_B[:, None], _SPACE, PAD_RECORD)
  rows, cols = np.nonzero(np.arange(t) < text.length_B[:, None])
  out[rows, cols + shift[rows, cols]] = text_records(text)[rows, cols]
  return records_text(out, length_B)
