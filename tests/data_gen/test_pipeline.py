"""The pipeline: stateless sharded sampling, the batch contract, loss masks, hints, eval layout."""

import numpy as np
import pytest

from data_gen import hints, pipeline, text
from data_gen.tokenizers import BOS_ID, EOS_ID, PAD_ID, TASK_ID0


def addition(**overrides):
  cfg = pipeline.default_data_config()
  cfg.train_lengths = {"len_0": (1, 6), "len_1": (1, 6)}
  cfg.update(overrides)
  return cfg


def sorting_with_hints(**overrides):
  cfg = pipeline.default_data_config()
  cfg.update(task="sorting", format="plain", hints="successor_hint:0.25,count_hint:0.25")
  cfg.train_lengths = {"count": (2, 5), "digits": (1, 3)}  # assigned: update() would merge the axes
  cfg.update(overrides)
  return cfg


def sample(cfg, step=0, **kw):
  kw.setdefault("batch_size", 16)
  return pipeline.sample_batch(cfg, seed=3, step=step, **kw)


def decode(cfg, tokens_BxT) -> list[str]:
  return pipeline.build(cfg).tokenizer.decode(tokens_BxT)


def assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for key in a:
    assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def pad_to(batch, t):
  return {k: np.pad(v, [(0, 0), (0, t - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for k, v in batch.items()}


def test_same_seed_and_step_give_the_same_batch_in_any_order():
  cfg = addition()
  first = [sample(cfg, step) for step in range(4)]
  resumed = [sample(addition(), step) for step in (3, 2, 1, 0)][::-1]
  for a, b in zip(first, resumed):
    assert_batches_equal(a, b)
  assert not np.array_equal(first[0]["tokens"], first[1]["tokens"])
  other_seed = pipeline.sample_batch(cfg, seed=4, step=0, batch_size=16)
  assert not np.array_equal(first[0]["tokens"], other_seed["tokens"])


@pytest.mark.parametrize("make_cfg", [addition, sorting_with_hints])
def test_processes_together_draw_the_single_process_batch(make_cfg):
  cfg = make_cfg(num_shards=4)
  whole = sample(cfg, step=5)
  for count in (2, 4):
    parts = [sample(cfg, step=5, process_index=p, process_count=count) for p in range(count)]
    assert all(p["tokens"].shape[0] == 16 // count for p in parts)
    t = whole["tokens"].shape[1]
    assert max(p["tokens"].shape[1] for p in parts) == t
    joined = {k: np.concatenate([pad_to(p, t)[k] for p in parts]) for k in whole}
    assert_batches_equal(joined, whole)


def test_processes_must_divide_the_shards():
  with pytest.raises(ValueError, match="num_shards"):
    sample(addition(num_shards=4), process_index=0, process_count=3, batch_size=12)
  with pytest.raises(ValueError, match="num_shards"):
    sample(addition(num_shards=4), batch_size=10)
  with pytest.raises(ValueError, match="process_index"):
    sample(addition(num_shards=2), process_index=2, process_count=2)


def test_batch_contract():
  cfg = addition()
  batch = sample(cfg, batch_size=32)
  tokens, positions, loss = batch["tokens"], batch["positions"], batch["loss_mask"]
  assert (tokens.dtype, positions.dtype, loss.dtype) == (np.int32, np.int32, np.float32)
  assert tokens.shape == positions.shape == loss.shape and tokens.shape[1] % 8 == 0
  length = (tokens != PAD_ID).sum(axis=1)
  rows = np.arange(len(tokens))
  assert (tokens[:, 0] == BOS_ID).all() and (tokens[rows, length - 1] == EOS_ID).all()
  beyond = np.arange(tokens.shape[1]) >= length[:, None]
  assert (tokens[beyond] == PAD_ID).all() and (positions[beyond] == 0).all() and (loss[beyond] == 0).all()
  np.testing.assert_array_equal(positions[~beyond], np.nonzero(~beyond)[1])
  for text in decode(cfg, tokens):
    a, b, answer = text.removeprefix("<bos>$").removesuffix("$<eos>").replace("=", "+").split("+")
    assert int(answer[::-1]) == int(a) + int(b) and 1 <= len(a) <= 6 and 1 <= len(b) <= 6


def test_answer_loss_covers_the_answer_and_eos_only():
  cfg = addition()
  batch = sample(cfg)
  for tokens, loss, text in zip(batch["tokens"], batch["loss_mask"], decode(cfg, batch["tokens"])):
    target = decode(cfg, tokens[loss == 1][None])[0]
    assert target == text[text.index("=") + 1:]
    assert target.endswith("$<eos>")


def test_all_loss_covers_every_token_after_the_prefix():
  batch = sample(addition(loss="all"))
  real = batch["tokens"] != PAD_ID
  real[:, 0] = False
  np.testing.assert_array_equal(batch["loss_mask"] == 1, real)
  hinted = sample(sorting_with_hints(loss="all"))
  real = hinted["tokens"] != PAD_ID
  real[:, :2] = False
  np.testing.assert_array_equal(hinted["loss_mask"] == 1, real)


def test_pad_to_max_len_and_the_max_len_limit():
  assert sample(addition(pad_to_max_len=True, max_len=40))["tokens"].shape == (16, 40)
  with pytest.raises(ValueError, match="max_len = 12"):
    sample(addition(max_len=12))
  assert pipeline.eval_batch(addition(max_len=12), (6, 6), 2, seed=0)["answer"].shape[1] >= 7  # eval: no bound


def test_hint_rows_are_split_by_the_mixture_behind_task_tokens():
  cfg = sorting_with_hints()
  batch = sample(cfg)
  np.testing.assert_array_equal(batch["tokens"][:, 1], TASK_ID0 + np.repeat([0, 1, 2], [8, 4, 4]))
  texts = decode(cfg, batch["tokens"])
  assert all(t.startswith(f"<bos><task:{i}>{'SHC'[i]} ")
             for t, i in zip(texts, np.repeat([0, 1, 2], [8, 4, 4])))
  for tokens, loss, text in zip(batch["tokens"], batch["loss_mask"], texts):
    target = decode(cfg, tokens[loss == 1][None])[0]
    assert text.endswith(" > " + target) and target.endswith(" E<eos>")


def test_mixture_strings():
  assert hints.parse_mixture("") == ()
  assert hints.parse_mixture("successor_hint:0.5, count_hint:0.1") == (("successor_hint", 0.5), ("count_hint", 0.1))
  assert hints.split_rows(hints.fractions((("a", 0.25), ("b", 0.25))), 10) == [5, 2, 3]
  for bad in ("successor_hint", "successor_hint:1.5", "a:0.5,a:0.1", "a:0.6,b:0.4"):
    with pytest.raises(ValueError):
      hints.parse_mixture(bad)


@pytest.mark.parametrize("field, value, match", [
    ("task", "adition", "task 'adition' unknown"),
    ("format", "reversed", "reversed"),
    ("tokenizer", "chunk9_l2r", "tokenizer 'chunk9_l2r' unknown"),
    ("positions", "abacos", "position rule 'abacos' unknown"),
    ("loss", "prompt", "data.loss 'prompt' unknown"),
    ("train_lengths", {"len_0": (1, 3)}, "data.train_lengths"),
    ("train_lengths", {"len_0": (3, 1), "len_1": (1, 2)}, "data.train_lengths.len_0"),
    ("train_lengths", {"len_0": (0, 1), "len_1": (1, 2)}, "data.train_lengths.len_0"),
    ("bucket", 0, "data.bucket"),
    ("holdout", 1.0, "data.holdout"),
    ("hints", "successor_hint:2", "data.hints"),
    ("hints", "succesor_hint:0.2", "task 'succesor_hint' unknown"),
    ("position_options", {"max_pos": 3}, "data.position_options"),
])
def test_bad_configs_name_the_field(field, value, match):
  cfg = addition()
  cfg[field] = value
  with pytest.raises(ValueError, match=match):
    pipeline.validate_data_config(cfg)


def test_validation_encodes_every_source_at_its_extreme_lengths():
  with pytest.raises(ValueError, match="layout 'list'"):
    pipeline.validate_data_config(sorting_with_hints(format="dollar"))
  with pytest.raises(ValueError, match="max_len"):
    pipeline.validate_data_config(addition(max_len=16))
  with pytest.raises(ValueError, match="max_pos"):
    pipeline.validate_data_config(addition(positions="coupling"))
  assert pipeline.validate_data_config(sorting_with_hints()).tokenizer.name == "char"


def unpadded(batch, b):
  prompt_real, answer_real = batch["prompt"][b] != PAD_ID, batch["answer"][b] != PAD_ID
  return (batch["prompt"][b][prompt_real], batch["answer"][b][answer_real],
          batch["prompt_positions"][b][prompt_real], batch["answer_positions"][b][answer_real])


@pytest.mark.parametrize("positions, options", [("sequential", {}), ("abacus", {}),
                                                 ("coupling", {"max_pos": 40, "levels": 2, "max_pos_number": 4})])
def test_eval_layout_reconstructs_the_encoded_example(positions, options):
  cfg = addition(positions=positions, position_options=options, format="reverse_answer+dollar")
  pipe = pipeline.build(cfg)
  source = pipe.sources[0]
  rng = np.random.default_rng(0)
  problem = source.task.sample(rng, np.array([[3, 5], [1, 1], [6, 2]]))
  tb, ids = pipeline.encode(pipe, source, problem, rng, train=False)
  train = pipeline.train_arrays(pipe, source, tb, ids)
  evaluation = pipeline.eval_arrays(tb, ids)
  for b in range(3):
    prompt, answer, prompt_pos, answer_pos = unpadded(evaluation, b)
    n = tb.length_B[b]
    np.testing.assert_array_equal(np.concatenate([prompt, answer]), train["tokens"][b, :n])
    np.testing.assert_array_equal(np.concatenate([prompt_pos, answer_pos]), train["positions"][b, :n])
    np.testing.assert_array_equal(train["loss_mask"][b, :n], np.arange(n) >= len(prompt))
    assert prompt[0] == BOS_ID and answer[-1] == EOS_ID
    assert decode(cfg, prompt[None])[0].endswith("=")


def test_eval_batch_layout_and_exact_lengths():
  cfg = addition()
  batch = pipeline.eval_batch(cfg, (3, 5), 12, seed=0)
  assert batch["prompt"].dtype == batch["answer"].dtype == np.int32 and batch["digit_mask"].dtype == bool
  assert batch["prompt"].shape == (12, 1 + 1 + 3 + 1 + 5 + 1)
  assert (batch["prompt"][:, 0] == BOS_ID).all()  # one prompt length: no left padding
  for b, (prompt, answer) in enumerate(zip(decode(cfg, batch["prompt"]), decode(cfg, batch["answer"]))):
    a, c = prompt.removeprefix("<bos>$").removesuffix("=").split("+")
    assert (len(a), len(c)) == (3, 5)
    digits = answer.removesuffix("$<eos>")
    assert int(digits[::-1]) == int(a) + int(c)
    np.testing.assert_array_equal(batch["digit_mask"][b], np.arange(batch["answer"].shape[1]) < len(digits))
  np.testing.assert_array_equal(batch["answer_positions"][:, 0], batch["prompt_positions"][:, -1] + 1)
  assert_batches_equal(batch, pipeline.eval_batch(addition(), (3, 5), 12, seed=0))


def test_eval_prompts_are_left_padded():
  """Random spaces give prompts of different lengths within a cell."""
  cfg = addition(format="random_spaces+reverse_answer")
  batch = pipeline.eval_batch(cfg, (4, 4), 16, seed=1)
  prompt_len = (batch["prompt"] != PAD_ID).sum(axis=1)
  assert prompt_len.min() < prompt_len.max() == batch["prompt"].shape[1]
  first = batch["prompt"].shape[1] - prompt_len
  assert (batch["prompt"][np.arange(16), first] == BOS_ID).all()
  assert (batch["prompt_positions"][batch["prompt"] == PAD_ID] == 0).all()
  assert (batch["answer"][:, 0] != PAD_ID).all()


def test_eval_positions_use_test_mode():
  """Abacus adds no offset at test time: every number's first digit has ID 1."""
  batch = pipeline.eval_batch(addition(positions="abacus"), (4, 2), 8, seed=0)
  assert (batch["answer_positions"][:, 0] == 1).all()
  assert batch["prompt_positions"].max() == 4


@pytest.mark.parametrize("fmt, final", [
    ("scratchpad_simple", ".\n495<eos>"),
    ("scratchpad_detailed", " , END\n</scratch>\n4 9 5<eos>"),
    ("scratchpad_recursive", "\n495<eos>"),
    ("reverse_answer+dollar", "594$<eos>"),
    ("index_hints", "c4b9a5<eos>"),
])
def test_final_mask_marks_the_final_answer_and_what_introduces_it(fmt, final):
  cfg = addition(format=fmt)
  pipe = pipeline.build(cfg)
  source = pipe.sources[0]
  problem = text.Problem((text.Number.from_ints([128]), text.Number.from_ints([367])),
                         (text.Number.from_ints([495]),), "+")
  tb, ids = pipeline.encode(pipe, source, problem, np.random.default_rng(0), train=False)
  batch = pipeline.eval_arrays(tb, ids, pipeline.final_start(pipe, tb))
  marked = np.where(batch["final_mask"], batch["answer"], PAD_ID)
  assert decode(cfg, marked)[0] == final
  mask = batch["final_mask"][0]
  np.testing.assert_array_equal(mask, (np.arange(mask.size) >= mask.argmax()) & (batch["answer"][0] != PAD_ID))


def test_validation_cells_are_held_out_and_never_test_problems():
  cfg = addition(train_lengths={"len_0": (1, 3), "len_1": (1, 3)}, holdout=0.25)
  cells = [(1, 1), (1, 2), (2, 2), (3, 3), (4, 2)]
  test = pipeline.eval_grid(cfg, cells, 100, seed=3)
  val = pipeline.validation_grid(cfg, cells, 30, seed=3, test_n=100, test_seed=3)
  # (1, 1) holds only 25 or so held-out problems, which the 100 test draws may all take: then the
  # cell is left out; the larger cells always have problems to spare
  assert set(cells) - {(1, 1)} <= set(val) <= set(cells)
  for cell, batch in val.items():
    assert batch["prompt"].shape[0] == 30
    assert not set(map(bytes, batch["prompt"])) & set(map(bytes, test[cell]["prompt"])), cell
  assert len(set(map(bytes, val[(3, 3)]["prompt"]))) == 30  # its own stream: not the test cell's next draws
  assert_batches_equal(val[(2, 2)], pipeline.validation_grid(cfg, [(2, 2)], 30, seed=3, test_n=100, test_seed=3)[(2, 2)])
