"""GraNd (gradient norm with predicted labels) on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/grand_digits.py --workdir /tmp/al_grand_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
See docs/gradient_strategies.md for the hyperparameters.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "grand"
  c.strategy.kw = dict(at="trained", num_inits=1, microbatch_size=16)
  return smoke(c) if arg == "smoke" else c
