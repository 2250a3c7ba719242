"""Default experiment: entropy sampling with an MLP on scikit-learn digits.

  python -m al_jax.main --config configs/default.py --workdir /tmp/al_default

1,350-image pool / 447 test images, 20 initial labels + 15 rounds of 20.
Runs offline in well under a minute on 2 CPU cores. `:smoke` shrinks it for
tests. Any strategy: `--config.strategy.name=NAME`, and any of its keywords:
`--config.strategy.kw.KEY=VALUE`; configs/digits.py:NAME adds each
strategy's tuned values.
"""

from configs.common import base_config, finish, parse


def get_config(arg: str | None = None):
  _, flags = parse(arg, ("entropy",), "entropy")
  return finish(base_config(), "entropy", None, flags)
