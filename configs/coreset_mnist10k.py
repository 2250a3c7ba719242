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

import inspect

from configs.default import base_config, mnist10k, smoke

DIVERSITY = ("coreset", "coreset_mip", "kmeans", "typiclust", "probcover", "cluster_margin")


def _parse(arg):
  parts = [p for p in (arg or "").split(",") if p]
  names = [p for p in parts if p != "smoke"]
  if len(names) > 1 or (names and names[0] not in DIVERSITY):
    raise ValueError(f"config argument {arg!r}: expected one of {DIVERSITY}, optionally ',smoke'")
  return (names[0] if names else "coreset"), "smoke" in parts


def _kw(name):
  from al_jax.strategies import STRATEGIES  # Defaults come from the factory itself.
  return {k: p.default for k, p in inspect.signature(STRATEGIES[name]).parameters.items()
          if k != "fns"}


def get_config(arg: str | None = None):
  name, is_smoke = _parse(arg)
  c = mnist10k(base_config())
  c.strategy.name = name
  c.strategy.kw = _kw(name)
  return smoke(c) if is_smoke else c
