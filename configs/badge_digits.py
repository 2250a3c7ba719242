"""BADGE (k-means++ on last-layer gradient embeddings) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/badge_digits.py --workdir /tmp/al_badge_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
See docs/gradient_strategies.md for the hyperparameters.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "badge"
  c.strategy.kw = dict(bias=False)
  return smoke(c) if arg == "smoke" else c
