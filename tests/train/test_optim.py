"""Lee et al.'s schedule: linear warmup, cosine to lr / 10; weight decay on matrices only."""

import numpy as np

from arithlab.config import train_config
from arithlab.train import optim


def test_warmup_then_cosine_to_a_tenth():
  cfg = train_config()
  cfg.update(lr=1e-3, warmup_steps=100, steps=5000, end_lr_ratio=0.1)
  schedule = optim.make_schedule(cfg)
  np.testing.assert_allclose([schedule(0), schedule(50), schedule(100)], [0.0, 5e-4, 1e-3], rtol=1e-6)
  np.testing.assert_allclose(schedule(5000), 1e-4, rtol=1e-5)
  np.testing.assert_allclose(schedule(2550), (1e-3 + 1e-4) / 2, rtol=1e-4)  # cosine midpoint


def test_decay_mask_is_true_on_matrices_only():
  params = {"kernel": np.zeros((3, 4)), "scale": np.zeros(4), "heads": np.zeros((2, 3, 4))}
  assert optim.decay_mask(params) == {"kernel": True, "scale": False, "heads": True}
