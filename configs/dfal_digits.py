"""DFAL (DeepFool, smallest perturbation first) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/dfal_digits.py --workdir /tmp/al_dfal_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "dfal"
  c.strategy.kw = dict(max_iter=50, overshoot=0.02)
  return smoke(c) if arg == "smoke" else c
