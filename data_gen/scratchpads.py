"""Scratchpad formats: Lee et al.'s simplified and detailed scratchpads, and a recursive one.

Each builder returns the list of `Piece`s of the whole text; the loop runs over the steps
of the algorithm (digit positions), never over examples: step i is written for every row
at once and masked out of the rows that have fewer steps. Everything after the prompt is
a target; the operands (in the prompt) and the final answer are numbers (num 0, 1 and 2),
the intermediate digits are not (num = sig = -1).

Lee et al. (layouts checked against lee-ny/teaching_arithmetic's data files):
  simplified, 128+367:       Input:\\n128+367\\nTarget:\\n
                             A->5 , C->1\\nA->9 , C->0\\nA->4 , C->0.\\n495
  detailed, 128+367:         ... Target:\\n<scratch>\\n[1,2,8] has 3 digits.\\n[3,6,7] has 3 digits.\\n
                             [1,2,8] + [3,6,7] , A=[] , C=0 , 8+7+0=15 , A->5 , C->1\\n ...
                             [] + [] , A=[4,9,5] C=0 , END\\n</scratch>\\n4 9 5
  detailed multiplication:   ... [1,2,8] * 7 , A=[8,9,6] , k=1 , B=[8,9,6] , C=0+896=896\\n ...
                             , C=8576+38400=46976 , END\\n</scratch>\\n4 6 9 7 6
Their files separate examples by a newline; here every example is its own row and ends
with its last answer digit (the tokenizer's EOS closes it).

Recursive (Shen et al. 2023 describe "a recursive scratchpad that strips one digit per step"
but publish no code; this layout is ours). After the prompt `128+367=`, step i (1..max
length) writes a line `rest_0+rest_1,carry,partial`: each operand without its i lowest
digits (empty once used up), the carry into column i, and the i lowest answer digits; a
last line holds the answer:
  128+367=\\n12+36,1,5\\n1+3,0,95\\n+,0,495\\n495
It takes any number of operands (the carry is then written as a decimal number).
"""

import numpy as np

from data_gen.tasks import digits as dg
from data_gen.text import Number, Piece, Problem, digits_piece, literal_piece, number_piece, when


def _int(values_B: np.ndarray) -> Piece:
  """Non-negative ints as digits outside numbers (a target)."""
  return number_piece(Number.from_array(values_B), None, target=True)


def _digit_list(digits_BxW: np.ndarray, length_B: np.ndarray) -> list[Piece]:
  """`[1,2,8]`: the numbers' digits, most significant first ([] for length 0)."""
  return [literal_piece("[", target=True),
          digits_piece(digits_BxW[:, None, :], length_B[:, None], between=",", target=True),
          literal_piece("]", target=True)]


def _lit(s: str) -> Piece:
  return literal_piece(s, target=True)


def _prompt(problem: Problem) -> list[Piece]:
  """`Input:\\n128+367\\nTarget:\\n` (Lee et al.)."""
  a, b = problem.operands
  return [literal_piece("Input:\n"), number_piece(a, 0), literal_piece(problem.op), number_piece(b, 1),
          literal_piece("\nTarget:\n")]


def _digits_header(a: Number, b: Number) -> list[Piece]:
  """`[1,2,8] has 3 digits.\\n[3,6,7] has 3 digits.\\n`."""
  pieces = []
  for number in (a, b):
    pieces += _digit_list(number.digits_BxW, number.length_B)
    pieces += [_lit(" has "), _int(number.length_B), _lit(" digits.\n")]
  return pieces


def _check_two_operands(problem: Problem, name: str, ops: str) -> None:
  if problem.layout != "arithmetic" or problem.op not in ops or len(problem.operands) != 2:
    raise ValueError(f"format {name!r} needs a two-operand problem with op in {list(ops)}; "
                     f"got layout {problem.layout!r}, op {problem.op!r}, {len(problem.operands)} operands")


def _column_steps(operands: tuple[Number, ...], steps: int):
  """Per column i < steps: the operands' digits [n, B], carry in [B] and column sum [B]."""
  width = steps + 1
  digits = np.stack([dg.widen(o.digits_BxW, width) for o in operands]).astype(np.int64)
  carry = np.zeros(digits.shape[1], np.int64)
  for i in range(steps):
    total = digits[:, :, i].sum(axis=0) + carry
    yield digits[:, :, i], carry, total
    carry = total // 10


def simple(problem: Problem) -> list[Piece]:
  """Lee et al.'s simplified scratchpad for two-operand addition (module docstring)."""
  _check_two_operands(problem, "scratchpad_simple", "+")
  a, b = problem.operands
  steps_B = np.maximum(a.length_B, b.length_B)
  pieces = _prompt(problem)
  for i, (_, _, total) in enumerate(_column_steps(problem.operands, int(steps_B.max()))):
    line = [_lit("A->"), _int(total % 10), _lit(" , C->"), _int(total // 10)]
    line += [when(_lit("\n"), i < steps_B - 1), when(_lit(".\n"), i == steps_B - 1)]
    pieces += [when(p, i < steps_B) for p in line]
  return pieces + [number_piece(problem.answers[0], 2, target=True)]


def detailed(problem: Problem) -> list[Piece]:
  """Lee et al.'s detailed scratchpad: addition or multiplication (module docstring)."""
  _check_two_operands(problem, "scratchpad_detailed", "+*")
  if problem.op == "*":
    return _detailed_multiplication(problem)
  a, b = problem.operands
  answer = problem.answers[0]
  steps_B = np.maximum(a.length_B, b.length_B)
  steps = int(steps_B.max())
  a_digits, b_digits = (dg.widen(n.digits_BxW, steps + 1) for n in (a, b))
  answer_digits = dg.widen(answer.digits_BxW, steps + 1)
  rest = lambda digits, number, i: _digit_list(digits[:, i:], np.maximum(number.length_B - i, 0))
  pieces = _prompt(problem) + [_lit("<scratch>\n")] + _digits_header(a, b)
  for i, (column, carry, total) in enumerate(_column_steps(problem.operands, steps)):
    line = rest(a_digits, a, i) + [_lit(" + ")] + rest(b_digits, b, i)
    line += [_lit(" , A=")] + _digit_list(answer_digits, np.full(a.batch, i)) + [_lit(" , C="), _int(carry)]
    line += [_lit(" , "), _int(column[0]), _lit("+"), _int(column[1]), _lit("+"), _int(carry), _lit("="),
             _int(total), _lit(" , A->"), _int(total % 10), _lit(" , C->"), _int(total // 10), _lit("\n")]
    pieces += [when(p, i < steps_B) for p in line]
  final_carry = (answer.length_B > steps_B).astype(np.int64)
  pieces += [_lit("[] + [] , A=")] + _digit_list(answer_digits, steps_B) + [_lit(" C="), _int(final_carry)]
  pieces += [_lit(" , END\n</scratch>\n"), number_piece(answer, 2, target=True, between=" ")]
  return pieces


def _detailed_multiplication(problem: Problem) -> list[Piece]:
  """Lee et al.'s detailed multiplication scratchpad: one line per digit of b."""
  a, b = problem.operands
  steps_B = b.length_B
  pieces = _prompt(problem) + [_lit("<scratch>\n")] + _digits_header(a, b)
  total = Number(np.zeros((a.batch, 1), np.int8), np.ones(a.batch, np.int32))
  b_digits = dg.widen(b.digits_BxW, int(steps_B.max()))
  for i in range(int(steps_B.max())):
    digit = Number(b_digits[:, i:i + 1], np.ones(a.batch, np.int32))
    partial = dg.multiply(a, digit)
    is_zero = (partial.length_B == 1) & (partial.digits_BxW[:, 0] == 0)
    shifted = Number(np.pad(partial.digits_BxW, ((0, 0), (i, 0))),
                     np.where(is_zero, 1, partial.length_B + i).astype(np.int32))
    new_total = dg.add((total, shifted))
    line = _digit_list(a.digits_BxW, a.length_B) + [_lit(" * "), _int(digit.digits_BxW[:, 0]), _lit(" , A=")]
    line += _digit_list(partial.digits_BxW, partial.length_B)
    line += [_lit(f" , k=1{'0' * i} , B=")] + _digit_list(shifted.digits_BxW, shifted.length_B)
    line += [_lit(" , C="), number_piece(total, None, target=True), _lit("+"),
             number_piece(shifted, None, target=True), _lit("="), number_piece(new_total, None, target=True),
             when(_lit("\n"), i < steps_B - 1), when(_lit(" , END\n"), i == steps_B - 1)]
    pieces += [when(p, i < steps_B) for p in line]
    total = new_total
  return pieces + [_lit("</scratch>\n"), number_piece(problem.answers[0], 2, target=True, between=" ")]


def recursive(problem: Problem) -> list[Piece]:
  """The recursive scratchpad for addition of any number of operands (module docstring)."""
  if problem.layout != "arithmetic" or problem.op != "+":
    raise ValueError(f"format 'scratchpad_recursive' needs an addition problem; got layout "
                     f"{problem.layout!r}, op {problem.op!r}")
  operands, answer = problem.operands, problem.answers[0]
  n = len(operands)
  steps_B = np.max(np.stack([o.length_B for o in operands]), axis=0)
  steps = int(steps_B.max())
  width = steps + 1
  pieces = []
  for k, o in enumerate(operands):
    pieces += [literal_piece("+")] * (k > 0) + [number_piece(o, k)]
  pieces.append(literal_piece("="))
  answer_digits = dg.widen(answer.digits_BxW, max(width, answer.digits_BxW.shape[1]))
  for i, (_, _, total) in enumerate(_column_steps(operands, steps)):
    line = [_lit("\n")]
    for k, o in enumerate(operands):
      rest_length = np.maximum(o.length_B - i - 1, 0)[:, None]
      line += [_lit("+")] * (k > 0)
      line.append(digits_piece(dg.widen(o.digits_BxW, width)[:, None, i + 1:], rest_length, target=True))
    line += [_lit(","), _int(total // 10), _lit(","),
             digits_piece(answer_digits[:, None, :], np.full((answer.batch, 1), i + 1), target=True)]
    pieces += [when(p, i < steps_B) for p in line]
  return pieces + [_lit("\n"), number_piece(answer, n, target=True)]
