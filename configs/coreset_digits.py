"""Diversity strategies (coreset by default) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/coreset_digits.py --workdir /tmp/al_coreset_digits
  python -m al_jax.main --config configs/coreset_digits.py:typiclust --workdir /tmp/al_tc_digits

The argument names one of coreset, coreset_mip, kmeans, typiclust, probcover,
cluster_margin (default coreset), optionally followed by ",smoke"; every
hyperparameter of that strategy is listed in `strategy.kw` with its default,
so `--config.strategy.kw.NAME=VALUE` overrides it. 1,347-image pool, 20
initial labels + 15 rounds of 20 (as configs/default.py).
"""

import inspect

from configs.default import base_config, smoke

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
  c = base_config()
  c.strategy.name = name
  c.strategy.kw = _kw(name)
  return smoke(c) if is_smoke else c
