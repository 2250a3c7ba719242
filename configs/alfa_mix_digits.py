"""ALFA-Mix (closed-form alpha, cap 0.2) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/alfa_mix_digits.py --workdir /tmp/al_alfa_mix_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "alfa_mix"
  c.strategy.kw = dict(alpha_cap=0.2, alpha_mode="closed_form", alpha_grid=10, kmeans_iters=20)
  return smoke(c) if arg == "smoke" else c
