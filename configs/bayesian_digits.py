"""Bayesian (MC-dropout) strategies on scikit-learn digits with a dropout MLP.

  python -m al_jax.main --config configs/bayesian_digits.py --workdir /tmp/al_bald_digits
  python -m al_jax.main --config configs/bayesian_digits.py:batchbald --workdir /tmp/al_bb_digits

The argument names one of bayesian_lc, bayesian_entropy, bald (default),
variation_ratios, mean_std, power_bald, power_entropy, batchbald, optionally
followed by ",smoke"; every hyperparameter of that strategy is listed in
`strategy.kw` with its default, so `--config.strategy.kw.NAME=VALUE`
overrides it. 1,350-image pool, 20 initial labels + 15 rounds of 20 (as
configs/default.py), MLP 64-128-10 with dropout 0.5 so MC dropout has
something to sample.
"""

from configs.default import base_config, parse, smoke, strategy_kw

BAYESIAN = ("bayesian_lc", "bayesian_entropy", "bald", "variation_ratios", "mean_std",
            "power_bald", "power_entropy", "batchbald")


def get_config(arg: str | None = None):
  name, is_smoke = parse(arg, BAYESIAN, "bald")
  c = base_config()
  c.model = dict(hidden=(128,), dropout=0.5)
  c.strategy.name = name
  c.strategy.kw = strategy_kw(name)
  if is_smoke:
    c = smoke(c)
    c.strategy.kw.num_samples = 4
    if "num_configs" in c.strategy.kw:
      c.strategy.kw.num_configs = 64
  return c
