"""Diversity strategies (coreset by default) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/coreset_digits.py --workdir /tmp/al_coreset_digits
  python -m al_jax.main --config configs/coreset_digits.py:typiclust --workdir /tmp/al_tc_digits

The argument names one of coreset, coreset_mip, kmeans, typiclust, probcover,
cluster_margin (default coreset), optionally followed by ",smoke"; every
hyperparameter of that strategy is listed in `strategy.kw` with its default,
so `--config.strategy.kw.NAME=VALUE` overrides it. 1,350-image pool, 20
initial labels + 15 rounds of 20 (as configs/default.py).
"""

from configs.default import base_config, parse, smoke, strategy_kw

DIVERSITY = ("coreset", "coreset_mip", "kmeans", "typiclust", "probcover", "cluster_margin")


def get_config(arg: str | None = None):
  name, is_smoke = parse(arg, DIVERSITY, "coreset")
  c = base_config()
  c.strategy.name = name
  c.strategy.kw = strategy_kw(name)
  return smoke(c) if is_smoke else c
