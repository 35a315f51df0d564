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
          "digit_mask": digit_mask}


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
  exact_C, digit_C, count_C = evaluate.score(generated, batch, index_N, 2)
  np.testing.assert_allclose(exact_C, [0.5, 0.5])
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
                                         "eval/exact_ood": 0.0, "eval/digit_ood": 0.0})


def test_summary_leaves_out_empty_regions():
  res = result()
  inside = evaluate.GridResult(**{**res.__dict__, "in_box_C": np.array([True, True])})
  assert set(inside.summary()) == {"eval/exact_all", "eval/exact_id", "eval/digit_id"}


def test_text_grid_brackets_the_training_cells():
  text = evaluate.format_grid(result())
  assert "rows: len_0, columns: len_1" in text
  assert "[100.0]" in text and " 25.0 " in text
  assert text.splitlines()[-1] == "exact match: ID 100.0%, OOD 25.0%"


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
