"""LL4AL on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/ll4al_digits.py --workdir /tmp/al_ll4al_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
The loss module reads the MLP's hidden layer; its gradient into the
backbone stops after epoch 30 (of >= 50, the paper's 120 of 200 scaled).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "ll4al"
  c.strategy.kw = dict(weight=1.0, margin=1.0, detach_epoch=30, hidden=128,
                       module_optimizer="adam", module_lr=1e-3, ranking="margin")
  return smoke(c) if arg == "smoke" else c
