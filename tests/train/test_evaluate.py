"""Grid scoring: exact match up to EOS, per-digit accuracy, region means, files and text."""

import json

import numpy as np
import pytest

from arithlab.train import evaluate

EOS = 2


def cell_batch(answers: list[list[int]], digits: list[list[bool]], prompt_width: int) -> dict[str, np.ndarray]:
  width = max(len(a) for a in answers)
  answer = np.zeros((len(answers), width), np.int32)
  digit_mask = np.zeros((len(answers), width), bool)
  for i, (a, d) in enumerate(zip(answers, digits)):
    answer[i, :len(a)], digit_mask[i, :len(d)] = a, d
  prompt = np.full((len(answers), prompt_width), 7, np.int32)
  return {"prompt": prompt, "prompt_positions": np.tile(np.arange(prompt_width, dtype=np.int32), (len(answers), 1)),
          "answer": answer, "answer_positions": np.tile(np.arange(width, dtype=np.int32), (len(answers), 1)),
          "digit_mask": digit_mask, "final_mask": answer != 0}


GRID = {
    (1, 1): cell_batch([[20, EOS], [21, EOS]], [[True, False], [True, False]], prompt_width=4),
    (2, 1): cell_batch([[20, 21, EOS], [22, 23, 24, EOS]], [[True, True, False], [True, True, True, False]],
                       prompt_width=5),
}


def test_stack_cells_pads_prompts_left_and_answers_right():
  batch, index_N = evaluate.stack_cells(GRID)
  assert batch["prompt"].shape == (4, 5) and batch["answer"].shape == (4, 4)
  np.testing.assert_array_equal(batch["prompt"][0], [0, 7, 7, 7, 7])
  np.testing.assert_array_equal(batch["answer"][0], [20, EOS, 0, 0])
  np.testing.assert_array_equal(index_N, [0, 0, 1, 1])


def test_cells_are_decoded_in_width_buckets_with_rows_padded_to_the_multiple():
  seen = []

  def decode(part):  # records the shapes it is called with; echoes the answer
    seen.append((part["prompt"].shape, part["answer"].shape))
    return part["answer"]

  res = evaluate.evaluate(decode, GRID, chunk=4, axes=["len_0", "len_1"], train_ranges=[(1, 1), (1, 1)], step=0,
                          row_multiple=4, bucket=1)
  assert seen == [((4, 4), (4, 2)), ((4, 5), (4, 4))]  # 2 rows each, padded to 4; widths of each cell
  np.testing.assert_allclose(res.exact_C, [1.0, 1.0])
  assert evaluate.bucket_cells(GRID, 1) == {(4, 2): [0], (5, 4): [1]}
  assert evaluate.bucket_cells(GRID, 4) == {(4, 4): [0], (5, 4): [1]}  # not past the widest
  seen.clear()
  evaluate.evaluate(decode, GRID, chunk=2, axes=["len_0", "len_1"], train_ranges=[(1, 1), (1, 1)], step=0)
  assert seen == [((2, 5), (2, 4))] * 2  # one bucket (16 rounds past both widest), two chunks


def test_score_counts_exact_match_through_eos_and_digits():
  batch, index_N = evaluate.stack_cells(GRID)
  generated = np.array([[20, EOS, 5, 5],  # right; what follows EOS does not matter
                        [21, 9, 0, 0],  # right digit, missing EOS: wrong
                        [20, 21, EOS, 0],  # right
                        [22, 0, 24, EOS]])  # one digit of three wrong
  exact_C, digit_C, count_C, target_C = evaluate.score(generated, batch, index_N, 2)
  np.testing.assert_allclose(exact_C, [0.5, 0.5])
  np.testing.assert_allclose(target_C, exact_C)  # without a scratchpad the whole answer is final
  np.testing.assert_allclose(digit_C, [1.0, 4 / 5])
  np.testing.assert_array_equal(count_C, [2, 2])


def result(exact_C=(1.0, 0.25)):
  return evaluate.GridResult(axes=["len_0", "len_1"], cells=list(GRID), exact_C=np.array(exact_C),
                             digit_C=np.array([1.0, 0.5]), count_C=np.array([2, 2]),
                             in_box_C=np.array([True, False]), train_ranges=[(1, 1), (1, 1)], step=7)


def test_evaluate_decodes_in_chunks_and_scores():
  def decode(part):  # echoes the answer except in rows of the second cell (answers of 3+ tokens)
    out = part["answer"].copy()
    out[part["answer"][:, 1] != EOS] = 0
    return out

  for bucket in (None, 1, 16):
    res = evaluate.evaluate(decode, GRID, chunk=3, axes=["len_0", "len_1"], train_ranges=[(1, 1), (1, 1)], step=7,
                            bucket=bucket)
    np.testing.assert_allclose(res.exact_C, [1.0, 0.0])
  assert res.in_box_C.tolist() == [True, False]
  assert res.summary() == pytest.approx({"eval/exact_all": 0.5, "eval/exact_id": 1.0, "eval/digit_id": 1.0,
                                         "eval/exact_ood": 0.0, "eval/digit_ood": 0.0, "eval/exact_target_all": 0.5,
                                         "eval/exact_target_id": 1.0, "eval/exact_target_ood": 0.0})
  assert set(res.summary("val")) == set(evaluate.VAL_KEYS)


def test_summary_leaves_out_empty_regions():
  res = result()
  inside = evaluate.GridResult(**{**res.__dict__, "in_box_C": np.array([True, True])})
  assert set(inside.summary()) == {"eval/exact_all", "eval/exact_id", "eval/digit_id", "eval/exact_target_all",
                                   "eval/exact_target_id"}


def test_text_grid_brackets_the_training_cells():
  text = evaluate.format_grid(result())
  assert "rows: len_0, columns: len_1" in text
  assert "[100.0]" in text and " 25.0 " in text
  assert text.splitlines()[-1] == "exact match: ID 100.0% [34.2, 100.0], OOD 25.0% [2.7, 80.2]"  # 2 problems each


def test_save_writes_npz_json_and_png(tmp_path):
  prefix = evaluate.save(result(), str(tmp_path), "test")
  assert prefix.endswith("grid_0000007")
  stored = np.load(prefix + ".npz")
  np.testing.assert_array_equal(stored["cells"], [[1, 1], [2, 1]])
  np.testing.assert_allclose(stored["exact"], [1.0, 0.25])
  with open(prefix + ".json") as f:
    record = json.load(f)
  assert record["eval/exact_ood"] == 0.25 and record["cells"][1]["in_distribution"] is False
  with open(prefix + ".png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def scratchpad_cell():
  """Two rows of `A->5\n.\n12` + EOS (tokens 30 A, 31 \n, 32 ., 5 / 1 / 2 digits); the final
  answer is `.\n12` + EOS."""
  answer = np.array([[30, 5, 31, 32, 31, 1, 2, EOS]] * 2, np.int32)
  final = np.arange(8) >= 3
  return {"prompt": np.full((2, 3), 7, np.int32), "prompt_positions": np.zeros((2, 3), np.int32),
          "answer": answer, "answer_positions": np.zeros((2, 8), np.int32),
          "digit_mask": np.tile(np.isin(np.arange(8), [5, 6]), (2, 1)), "final_mask": np.tile(final, (2, 1))}


@pytest.mark.parametrize("generated, final, target", [
    ([30, 5, 31, 32, 31, 1, 2, EOS], True, True),
    ([30, 9, 31, 32, 31, 1, 2, EOS], True, False),  # a wrong intermediate step: the final answer counts
    ([30, 5, 5, 31, 32, 31, 1, 2], False, False),  # a longer scratchpad without EOS in the window
    ([30, 31, 32, 31, 1, 2, EOS, 0], True, False),  # a shorter scratchpad, right final answer
    ([30, 5, 31, 32, 31, 1, 3, EOS], False, False),  # a wrong final digit
    ([30, 5, 31, 31, 1, 1, 2, EOS], False, False),  # the final answer not introduced by `.\n`
    ([30, 5, 31, 32, 31, 2, EOS, 0], False, False),  # a final answer one digit short
])
def test_scratchpad_rows_score_the_final_answer_aligned_at_eos(generated, final, target):
  batch = scratchpad_cell()
  exact_C, digit_C, _, target_C = evaluate.score(np.array([generated] * 2), batch, np.array([0, 0]), 1)
  assert (exact_C[0], target_C[0]) == (float(final), float(target))


def test_wilson_interval_known_values():
  assert evaluate.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
  assert evaluate.wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
  assert evaluate.wilson_interval(50, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)
  assert evaluate.wilson_interval(81, 263) == pytest.approx((0.25529, 0.36621), abs=1e-5)
  assert evaluate.wilson_interval(1, 2, z=1.0) == pytest.approx((0.5 - np.sqrt(1 / 12), 0.5 + np.sqrt(1 / 12)))
  assert evaluate.wilson_interval(0, 0) == (0.0, 1.0)
  assert evaluate.format_interval(0.5, 100) == "50.0% [40.4, 59.6]"
