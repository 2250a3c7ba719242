"""ISAL (influence on the labelled-set loss, LiSSA) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/isal_mnist10k.py --workdir /tmp/al_isal_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20.
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "isal"
  c.strategy.kw = dict(solver="lissa", damping=0.01, scale=100.0, depth=200, repeats=2,
                       hvp_batch_size=64, val_size=512, cg_iters=20)
  # v of s_test from 5 held-out initial labels, not the rows the model fits.
  c.al.validation_size = 5
  if arg == "smoke":
    c = smoke(c)
    # A few LiSSA steps: on CPU each CNN HVP inside the loop costs ~10x a step.
    c.strategy.kw.update(depth=5, repeats=1, hvp_batch_size=16, val_size=32)
    c.model.update(filters=4, dense=16)  # HVPs of the full CNN dominate the smoke run
  return c
