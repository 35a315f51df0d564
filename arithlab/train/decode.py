"""Greedy autoregressive decoding of eval batches: with the model's KV cache, and an uncached reference.

Both take a left-padded prompt and the position IDs of the answer slots (the eval batch's
`answer_positions`, known up front because position rules never depend on the generated
digits; randomized encodings draw them with the prompt's). Slot i of the answer is
predicted from the prompt and slots < i, and is fed back at `answer_positions[:, i]`.
Decoding always runs the full answer width A; tokens after EOS are left for the scorer to
ignore.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from arithlab.train import mesh as mesh_lib
from arithlab.train.step import PAD_ID, ModelDef

Batch = dict[str, jax.Array]


def _slot_positions(positions_BxA: jax.Array, i) -> jax.Array:
  """positions of answer slot i as [B, 1(, L)]."""
  return jax.lax.dynamic_slice_in_dim(positions_BxA, i, 1, axis=1)


def greedy_cached(model, prompt_BxP: jax.Array, prompt_positions: jax.Array,
                  answer_positions: jax.Array) -> jax.Array:
  """Greedy decoding with the KV cache: one prefill of the prompt, then one token per step.

  prompt_BxP: int32, left-padded with PAD. prompt_positions: int32 [B, P(, L)].
  answer_positions: int32 [B, A(, L)]. Returns the generated tokens, int32 [B, A].
  """
  batch, prompt_len = prompt_BxP.shape
  answer_len = answer_positions.shape[1]
  cache = model.init_cache(batch, prompt_len + answer_len)
  logits_BxPxV, cache = model.decode(prompt_BxP, prompt_positions, cache, mask_BxT=prompt_BxP != PAD_ID)
  first_B = jnp.argmax(logits_BxPxV[:, -1], axis=-1).astype(jnp.int32)

  def step(carry, i):
    token_B, cache = carry
    logits_Bx1xV, cache = model.decode(token_B[:, None], _slot_positions(answer_positions, i), cache)
    return (jnp.argmax(logits_Bx1xV[:, -1], axis=-1).astype(jnp.int32), cache), token_B

  (last_B, _), tokens_AxB = jax.lax.scan(step, (first_B, cache), jnp.arange(answer_len - 1))
  return jnp.concatenate([tokens_AxB.T, last_B[:, None]], axis=1)


def greedy_uncached(model, prompt_BxP: jax.Array, prompt_positions: jax.Array,
                    answer_positions: jax.Array) -> jax.Array:
  """Greedy decoding that reruns the whole sequence every step (the reference for the cache).

  Same arguments and result as `greedy_cached`: int32 [B, A].
  """
  batch, prompt_len = prompt_BxP.shape
  answer_len = answer_positions.shape[1]
  tokens_BxS = jnp.concatenate([prompt_BxP, jnp.zeros((batch, answer_len), jnp.int32)], axis=1)
  positions = jnp.concatenate([prompt_positions, answer_positions], axis=1)
  real_BxS = jnp.concatenate([prompt_BxP != PAD_ID, jnp.zeros((batch, answer_len), bool)], axis=1)

  def step(i, carry):
    tokens_BxS, real_BxS = carry
    logits_BxSxV = model(tokens_BxS, positions, mask_BxT=real_BxS)
    next_B = jnp.argmax(logits_BxSxV[:, prompt_len - 1 + i], axis=-1).astype(jnp.int32)
    tokens_BxS = tokens_BxS.at[:, prompt_len + i].set(next_B)
    return tokens_BxS, real_BxS.at[:, prompt_len + i].set(True)

  tokens_BxS, _ = jax.lax.fori_loop(0, answer_len, step, (tokens_BxS, real_BxS))
  return tokens_BxS[:, prompt_len:]


def make_decode(model_def: ModelDef, mesh: Mesh, rules, *,
                cached: bool = True) -> Callable[[dict, dict, Batch], jax.Array]:
  """A jitted `decode(params, rng_counts, batch) -> tokens int32 [B, A]`, batch-sharded.

  params, rng_counts: pure dicts from the train state. batch: an eval batch (prompt,
  prompt_positions, answer_positions; other fields are ignored) whose B divides by the
  data-parallel size.
  """
  greedy = greedy_cached if cached else greedy_uncached

  @functools.partial(jax.jit, out_shardings=mesh_lib.batch_sharding(mesh, rules, 2))
  def decode(params: dict, rng_counts: dict, batch: Batch) -> jax.Array:
    model = model_def.merge(params, rng_counts)
    return greedy(model, batch["prompt"], batch["prompt_positions"], batch["answer_positions"])

  def run(params: dict, rng_counts: dict, batch: Batch) -> jax.Array:
    with jax.set_mesh(mesh):
      return decode(params, rng_counts, batch)

  return run
