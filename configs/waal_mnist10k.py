"""WAAL on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/waal_mnist10k.py --workdir /tmp/al_waal_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20.
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "waal"
  c.strategy.kw = dict(alpha=2e-3, gamma=1.0, gp_weight=2.0, selection=10.0, critic_hidden=50,
                       critic_lr=1e-3)
  return smoke(c) if arg == "smoke" else c
