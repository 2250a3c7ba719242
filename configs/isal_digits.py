"""ISAL (influence on the labelled-set loss, LiSSA) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/isal_digits.py --workdir /tmp/al_isal_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
See docs/gradient_strategies.md for the hyperparameters.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "isal"
  c.strategy.kw = dict(solver="lissa", damping=0.01, scale=100.0, depth=200, repeats=2,
                       hvp_batch_size=64, val_size=512, cg_iters=20)
  # v of s_test from 5 held-out initial labels, not the rows the model fits.
  c.al.validation_size = 5
  if arg == "smoke":
    c = smoke(c)
    # A few LiSSA steps: on CPU each CNN HVP inside the loop costs ~10x a step.
    c.strategy.kw.update(depth=5, repeats=1, hvp_batch_size=16, val_size=32)
  return c
