"""End to end: every task x format x tokenizer through `sample_batch`, checked against Python ints.

Each drawn case fixes every length axis to one value (train_lengths min = max), samples a
batch, decodes each row's prompt (loss 0) and target (loss 1), parses the operands from the
prompt's digits (cut by the known lengths, so random spaces and index-hint letters do not
matter) and the answer from the target, and compares with Python's big-int result.
"""

import subprocess
import sys

from hypothesis import given, settings, strategies as st
import numpy as np

from data_gen import pipeline
from data_gen.tokenizers import PAD_ID, TOKENIZERS

LIST_SWITCHES = ("reverse_answer", "reverse_operands", "index_hints", "random_spaces")


def digits(text: str) -> str:
  return "".join(c for c in text if c.isdigit())


def chunks(s: str, sizes) -> list[str]:
  out, start = [], 0
  for size in sizes:
    out.append(s[start:start + size])
    start += size
  assert start == len(s), (s, sizes)
  return out


@st.composite
def arithmetic_case(draw):
  task, options, n = draw(st.sampled_from([("addition", {}, 2), ("addition", {"n_operands": 3}, 3),
                                           ("multiplication", {}, 2)]))
  scratchpads = {("addition", 2): ["simple", "detailed", "recursive"], ("addition", 3): ["recursive"],
                 ("multiplication", 2): ["detailed"]}[(task, n)]
  scratchpad = draw(st.sampled_from([None] + scratchpads))
  switches = [f"scratchpad_{scratchpad}"] if scratchpad else []
  cap = 40 if scratchpad else 200
  if not scratchpad:
    switches += [s for s in ("reverse_answer", "reverse_operands", "index_hints") if draw(st.booleans())]
    switches += [s for s in [draw(st.sampled_from([None, "dollar", "natural_language"]))] if s]
  switches += ["random_spaces"] * draw(st.booleans())
  lengths = [draw(st.integers(1, cap)) for _ in range(n)]
  pad = None if scratchpad else draw(st.sampled_from([None, "pad", "padN"]))
  width = max(lengths) + (draw(st.integers(0, 3)) if pad == "padN" else 0)
  if pad:
    switches.append(f"pad{width}" if pad == "padN" else "pad")
  axes = [f"len_{i}" for i in range(n)] if task == "addition" else ["len_a", "len_b"]
  return task, options, switches, dict(zip(axes, lengths))


@st.composite
def list_case(draw):
  task = draw(st.sampled_from(["sorting", "successor_hint", "predecessor_hint", "count_hint",
                               "counting_successor"]))
  switches = [s for s in LIST_SWITCHES if draw(st.booleans())]
  low = 2 if task in ("successor_hint", "predecessor_hint") else 1
  count = draw(st.integers(low, 30 if task == "counting_successor" else 10))
  return task, {}, switches, {"count": count, "digits": draw(st.integers(1, 200))}


@st.composite
def other_case(draw):
  task = draw(st.sampled_from(["counting_repeat", "bucket_sort"]))
  allowed = ("reverse_answer", "index_hints", "random_spaces") if task == "counting_repeat" else ("random_spaces",)
  switches = [s for s in allowed if draw(st.booleans())]
  axis = "count" if task == "counting_repeat" else "length"
  return task, {}, switches, {axis: draw(st.integers(1, 200))}


def expected_answer(task: str, switches, lengths, prompt: str) -> list[str]:
  """The answer strings Python computes from the operands written in the prompt."""
  d = digits(prompt)
  unreverse = (lambda s: s[::-1]) if "reverse_operands" in switches else (lambda s: s)
  if task in ("addition", "multiplication"):
    widths = list(lengths.values())
    pad = [s for s in switches if s.startswith("pad")]
    if pad:
      widths = [int(pad[0][3:]) if pad[0] != "pad" else max(widths)] * len(widths)
    operands = [int(unreverse(s)) for s in chunks(d, widths)]
    assert [len(str(o)) for o in operands] == list(lengths.values())
    return [str(sum(operands) if task == "addition" else operands[0] * operands[1])]
  if task == "counting_successor":
    a = int(unreverse(d[:lengths["digits"]]))
    b = int(unreverse(d[lengths["digits"]:]))
    assert b - a + 1 == lengths["count"]
    return [str(v) for v in range(a, b + 1)]
  if task == "counting_repeat":
    assert prompt.count("a") == lengths["count"]
    return [str(v) for v in range(1, lengths["count"] + 1)]
  if task == "bucket_sort":
    return ["".join(sorted(d))]
  count = lengths["count"] + (task != "sorting")
  items = [int(unreverse(s)) for s in chunks(d, [lengths["digits"]] * count)]
  if task == "sorting":
    return [str(v) for v in sorted(items)]
  *items, query = items
  assert query in items
  return [str({"successor_hint": lambda: min(v for v in items if v > query),
               "predecessor_hint": lambda: max(v for v in items if v < query),
               "count_hint": lambda: items.count(query)}[task]())]


def parsed_answer(task: str, switches, target: str) -> list[str]:
  """The answer strings written in the decoded target text."""
  reverse = (lambda s: s[::-1]) if "reverse_answer" in switches else (lambda s: s)
  if task in ("addition", "multiplication"):
    last = target.split("\n")[-1] if any(s.startswith("scratchpad") for s in switches) else target
    return [str(int(reverse(digits(last))))]
  if task == "bucket_sort":
    return [target]
  assert target.endswith(" E")
  return [reverse(digits(item)) for item in target.removesuffix(" E").split(" ")]


@settings(max_examples=600, deadline=None)
@given(case=st.one_of(arithmetic_case(), list_case(), other_case()),
       tokenizer=st.sampled_from(TOKENIZERS.names()), seed=st.integers(0, 2**31 - 1))
def test_every_decoded_answer_equals_python(case, tokenizer, seed):
  task, options, switches, lengths = case
  cfg = pipeline.default_data_config()
  cfg.update(task=task, task_options=options, format="+".join(switches) or "plain", tokenizer=tokenizer,
             holdout=0.0, max_len=1 << 16)
  cfg.train_lengths = {axis: (n, n) for axis, n in lengths.items()}
  batch = pipeline.sample_batch(cfg, seed=seed, step=0, batch_size=3)
  tok = TOKENIZERS.get(tokenizer)
  for tokens, loss in zip(batch["tokens"], batch["loss_mask"]):
    real = tokens != PAD_ID
    prompt = tok.decode(tokens[real & (loss == 0)][None])[0].removeprefix("<bos>")
    target = tok.decode(tokens[loss == 1][None])[0]
    assert target.endswith("<eos>"), target
    target = target.removesuffix("<eos>")
    if "dollar" in switches:
      assert prompt.startswith("$") and target.endswith("$")
      target = target.removesuffix("$")
    assert parsed_answer(task, switches, target) == expected_answer(task, switches, lengths, prompt), (
        prompt, target)


def test_show_cli_prints_examples_with_positions():
  out = subprocess.run([sys.executable, "-m", "data_gen.show", "--task=addition",
                        "--format=reverse_answer+dollar", "--tokenizer=chunk3_r2l", "-n", "5"],
                       capture_output=True, text=True, check=True).stdout
  assert out.count("<bos>$") == 5 and out.count("  pos ") >= 5 and "loss" in out
  out = subprocess.run([sys.executable, "-m", "data_gen.show", "--task=sorting", "--format=plain",
                        "--positions=abacus", "--hints=successor_hint:0.5", "--lengths=count=2:4,digits=1:2",
                        "-n", "2"], capture_output=True, text=True, check=True).stdout
  assert "<task:0>S" in out and "<task:1>H" in out
  bad = subprocess.run([sys.executable, "-m", "data_gen.show", "--format=reversed"], capture_output=True, text=True)
  assert bad.returncode != 0 and "reversed" in bad.stderr
