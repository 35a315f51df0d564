"""The optimizer: AdamW with Lee et al.'s warmup + cosine schedule and gradient clipping.

Gradient accumulation is not an optimizer wrapper here: the train step (step.py) scans
over micro-batches and hands one summed gradient to the optimizer, so one step is one
update and one batch of the stateless sampler.
"""

import jax
import ml_collections
import optax


def make_schedule(train_cfg: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warmup from 0 to `lr` over `warmup_steps`, then cosine to `lr * end_lr_ratio` at `steps`.

  Returns a function step (int32 scalar) -> learning rate (float32 scalar).
  """
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=train_cfg.lr,
      warmup_steps=train_cfg.warmup_steps,
      decay_steps=max(train_cfg.steps, train_cfg.warmup_steps + 1),
      end_value=train_cfg.lr * train_cfg.end_lr_ratio,
  )


def decay_mask(params):
  """True on matrices (ndim >= 2), False on biases, norm scales and other vectors."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Global-norm clipping at `grad_clip` (0 disables it), then AdamW on `make_schedule`.

  Weight decay applies to matrices only (`decay_mask`), as in nanoGPT, which Lee et al. use.
  """
  adamw = optax.adamw(
      make_schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2,
      weight_decay=train_cfg.weight_decay, mask=decay_mask)
  if train_cfg.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(train_cfg.grad_clip), adamw)
  return adamw
