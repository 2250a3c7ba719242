"""ALFA-Mix (closed-form alpha, cap 0.2) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/alfa_mix_mnist10k.py --workdir /tmp/al_alfa_mix_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20.
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "alfa_mix"
  c.strategy.kw = dict(alpha_cap=0.2, alpha_mode="closed_form", alpha_grid=10, kmeans_iters=20)
  return smoke(c) if arg == "smoke" else c
