"""WAAL on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/waal_digits.py --workdir /tmp/al_waal_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "waal"
  c.strategy.kw = dict(alpha=2e-3, gamma=1.0, gp_weight=2.0, selection=10.0, critic_hidden=50,
                       critic_lr=1e-3)
  return smoke(c) if arg == "smoke" else c
