"""EGL (expected gradient length, full network) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/egl_digits.py --workdir /tmp/al_egl_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
See docs/gradient_strategies.md for the hyperparameters.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "egl"
  c.strategy.kw = dict(last_layer=False, bias=True, microbatch_size=16)
  return smoke(c) if arg == "smoke" else c
