"""Diversity strategies (coreset by default) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/coreset_mnist10k.py --workdir /tmp/al_coreset_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k
  python -m al_jax.main --config configs/coreset_mnist10k.py:probcover --workdir /tmp/al_pc_mnist

The argument names one of coreset, coreset_mip, kmeans, typiclust, probcover,
cluster_margin (default coreset), optionally followed by ",smoke"; the
strategy's hyperparameters are listed in `strategy.kw` with their defaults.
The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20.
"""

from configs.coreset_digits import DIVERSITY
from configs.default import base_config, mnist10k, parse, smoke, strategy_kw


def get_config(arg: str | None = None):
  name, is_smoke = parse(arg, DIVERSITY, "coreset")
  c = mnist10k(base_config())
  c.strategy.name = name
  c.strategy.kw = strategy_kw(name)
  return smoke(c) if is_smoke else c
