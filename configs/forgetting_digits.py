"""Forgetting events (predicted-label flips across training epochs) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/forgetting_digits.py --workdir /tmp/al_forgetting_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
See docs/gradient_strategies.md for the hyperparameters.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "forgetting"
  c.strategy.kw = dict(tie_break="entropy", chunk=512)
  return smoke(c) if arg == "smoke" else c
