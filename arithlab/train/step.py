"""The train state and the jitted train step: a pure function of (state, batch).

The model is split once with `nnx.split` into a graph definition, its parameters, its RNG
counters (dropout) and the rest (RNG keys and other constants). The train state is a plain
dict of arrays, which is what jit, the optimizer and orbax see:

  state = {"step": int32 [], "params": {...}, "opt_state": optax state, "rng_counts": {...}}

The step merges the model back inside jit (`nnx.merge`), so it stays a pure function with
NamedSharding in/out shardings and the state donated.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from arithlab import models
from arithlab.train import mesh as mesh_lib
from arithlab.train import optim

PAD_ID = 0

State = dict[str, Any]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ModelDef:
  """What the step needs to rebuild the model from a train state: the graph and its constants.

  graphdef: from `nnx.split`. constants: the `nnx.State` of everything that is neither a
  parameter nor an RNG counter (RNG keys, built from the seed, never trained).
  """

  graphdef: nnx.GraphDef
  constants: nnx.State

  def merge(self, params: dict, rng_counts: dict) -> nnx.Module:
    """The model with the given parameter and RNG-counter pure dicts."""
    return nnx.merge(self.graphdef, params, rng_counts, self.constants)


def split(model: nnx.Module) -> tuple[ModelDef, nnx.State, nnx.State]:
  """(ModelDef, params State, RNG-counter State) of an NNX model."""
  graphdef, params, rng_counts, constants = nnx.split(model, nnx.Param, nnx.RngCount, ...)
  return ModelDef(graphdef, constants), params, rng_counts


def rng_counts_of(model: nnx.Module) -> dict:
  """The pure dict of the model's RNG counters (advanced by dropout)."""
  return nnx.to_pure_dict(nnx.state(model, nnx.RngCount))


def _builder(model_cfg: ml_collections.ConfigDict, seed: int) -> Callable[[], nnx.Module]:
  """The model's constructor with its own RNGs (to trace under nnx.eval_shape or jax.jit)."""
  return lambda: models.build(model_cfg, rngs=nnx.Rngs(seed))


def init(cfg: ml_collections.ConfigDict, mesh: Mesh,
         tx: optax.GradientTransformation) -> tuple[ModelDef, State, State]:
  """Builds the model and the train state under `mesh`; returns (ModelDef, state, state shardings).

  The state is created by one jitted function whose outputs are already sharded: parameters
  by their logical names and `cfg.model.logical_rules`, optimizer moments like their
  parameters, scalars and RNG counters replicated. Nothing is materialized on one device.
  """
  replicated = mesh_lib.replicated(mesh)
  build = _builder(cfg.model, cfg.seed)

  def create() -> tuple[State, nnx.State]:
    model_def, params, rng_counts = split(build())
    params = nnx.to_pure_dict(params)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
             "rng_counts": nnx.to_pure_dict(rng_counts)}
    return state, model_def.constants

  with jax.set_mesh(mesh):
    abstract_def, abstract_params, _ = split(nnx.eval_shape(build))
    param_shardings = mesh_lib.variable_shardings(abstract_params, mesh, cfg.model.logical_rules)
    abstract_state, _ = jax.eval_shape(create)
    shardings = {
        "step": replicated,
        "params": param_shardings,
        "opt_state": optax.tree_utils.tree_map_params(
            tx, lambda _, sharding: sharding, abstract_state["opt_state"], param_shardings,
            transform_non_params=lambda _: replicated),
        "rng_counts": jax.tree.map(lambda _: replicated, abstract_state["rng_counts"]),
    }
    state, constants = jax.jit(create, out_shardings=(shardings, replicated))()
  return ModelDef(abstract_def.graphdef, constants), state, shardings


def model_def_of(model_cfg: ml_collections.ConfigDict, seed: int, mesh: Mesh) -> ModelDef:
  """The ModelDef (graph and constants, no parameters) of the model of `model_cfg`: to decode
  a train state's parameters with a variant of its model that has the same parameters (e.g.
  `models.with_rope_scaling`)."""
  build = _builder(model_cfg, seed)
  with jax.set_mesh(mesh):
    graphdef = split(nnx.eval_shape(build))[0].graphdef
    constants = jax.jit(lambda: split(build())[0].constants, out_shardings=mesh_lib.replicated(mesh))()
  return ModelDef(graphdef, constants)


def loss_sums(model: nnx.Module, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Summed loss and accuracy counts of a training batch (teacher forcing).

  batch: tokens int32 [B, T], positions int32 [B, T(, L)], loss_mask float32 [B, T]. The
  model reads tokens[:, :-1] and predicts tokens[:, 1:], weighted by loss_mask[:, 1:].
  Returns float32 scalars: loss (sum of weighted cross-entropy), weight (sum of weights),
  correct (weighted argmax hits), exact (rows whose every target is hit), rows (rows with a
  target), tokens (non-PAD input tokens).
  """
  inputs_BxT = batch["tokens"][:, :-1]
  labels_BxT = batch["tokens"][:, 1:]
  weights_BxT = batch["loss_mask"][:, 1:]
  real_BxT = inputs_BxT != PAD_ID
  logits_BxTxV = model(inputs_BxT, batch["positions"][:, :-1], mask_BxT=real_BxT, deterministic=False)
  ce_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV.astype(jnp.float32), labels_BxT)
  hit_BxT = (jnp.argmax(logits_BxTxV, axis=-1) == labels_BxT).astype(jnp.float32)
  has_target_B = jnp.any(weights_BxT > 0, axis=1)
  row_exact_B = jnp.all((hit_BxT > 0) | (weights_BxT == 0), axis=1) & has_target_B
  return {
      "loss": jnp.sum(ce_BxT * weights_BxT),
      "weight": jnp.sum(weights_BxT),
      "correct": jnp.sum(hit_BxT * weights_BxT),
      "exact": jnp.sum(row_exact_B.astype(jnp.float32)),
      "rows": jnp.sum(has_target_B.astype(jnp.float32)),
      "tokens": jnp.sum(real_BxT.astype(jnp.float32)),
  }


def _micro_batches(batch: dict[str, jax.Array], accum: int) -> dict[str, jax.Array]:
  """[B, ...] -> [accum, B / accum, ...], micro-batch i = rows i, i + accum, ... (strided, so
  each micro-batch stays evenly spread over the data-parallel shards)."""
  def split_rows(x):
    x = x.reshape((x.shape[0] // accum, accum) + x.shape[1:])
    return jnp.moveaxis(x, 1, 0)

  return jax.tree.map(split_rows, batch)


def grads_and_sums(model_def: ModelDef, params: dict, rng_counts: dict, batch: dict[str, jax.Array],
                   accum: int) -> tuple[dict, dict, dict[str, jax.Array]]:
  """Gradient of the mean weighted loss over the whole batch, in `accum` sequential micro-batches.

  Returns (grads like params, new rng_counts, summed counts of `loss_sums`).
  """
  total_weight = jnp.maximum(jnp.sum(batch["loss_mask"][:, 1:]), 1.0)

  def micro(carry, micro_batch):
    grads, counts = carry

    def loss(p):
      model = model_def.merge(p, counts)
      sums = loss_sums(model, micro_batch)
      return sums["loss"] / total_weight, (sums, rng_counts_of(model))

    (_, (sums, counts)), g = jax.value_and_grad(loss, has_aux=True)(params)
    return (jax.tree.map(jnp.add, grads, g), counts), sums

  zeros = jax.tree.map(jnp.zeros_like, params)
  if accum == 1:
    (grads, rng_counts), sums = micro((zeros, rng_counts), batch)
    return grads, rng_counts, sums
  (grads, rng_counts), sums = jax.lax.scan(micro, (zeros, rng_counts), _micro_batches(batch, accum))
  return grads, rng_counts, jax.tree.map(jnp.sum, sums)


def train_step(state: State, batch: dict[str, jax.Array], *, model_def: ModelDef,
               tx: optax.GradientTransformation, schedule: optax.Schedule, accum: int) -> tuple[State, Metrics]:
  """One optimizer update. Returns the new state and float32 scalar metrics: loss,
  token_accuracy, exact_match (teacher-forced, rows of the batch), grad_norm, lr, tokens."""
  grads, rng_counts, sums = grads_and_sums(model_def, state["params"], state["rng_counts"], batch, accum)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  new_state = {
      "step": state["step"] + 1,
      "params": optax.apply_updates(state["params"], updates),
      "opt_state": opt_state,
      "rng_counts": rng_counts,
  }
  metrics = {
      "loss": sums["loss"] / jnp.maximum(sums["weight"], 1.0),
      "token_accuracy": sums["correct"] / jnp.maximum(sums["weight"], 1.0),
      "exact_match": sums["exact"] / jnp.maximum(sums["rows"], 1.0),
      "grad_norm": optax.tree.norm(grads),
      "lr": jnp.asarray(schedule(state["step"]), jnp.float32),
      "tokens": sums["tokens"],
  }
  return new_state, metrics


def make_train_step(model_def: ModelDef, train_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation,
                    state_shardings: State, batch_shardings: dict[str, NamedSharding],
                    mesh: Mesh) -> Callable[[State, dict[str, jax.Array]], tuple[State, Metrics]]:
  """`train_step` jitted with the state's and the batch's shardings; the input state is donated."""
  step = functools.partial(train_step, model_def=model_def, tx=tx, schedule=optim.make_schedule(train_cfg),
                           accum=train_cfg.grad_accum)
  jitted = jax.jit(step, in_shardings=(state_shardings, batch_shardings),
                   out_shardings=(state_shardings, mesh_lib.replicated(mesh)), donate_argnums=0)

  def run(state: State, batch: dict[str, jax.Array]) -> tuple[State, Metrics]:
    with jax.set_mesh(mesh):
      return jitted(state, batch)

  return run
