"""The digits protocol: any strategy on scikit-learn digits with an MLP.

  python -m al_jax.main --config configs/digits.py:badge --workdir /tmp/al_badge_digits
  python benchmarks/accuracy.py --config configs/digits.py:table --strategies all --seeds 3 \
      --out benchmarks/results/table_digits

The argument is 'NAME[,table][,smoke]' (default entropy, as configs/default.py).
1,350-image pool / 447 test images, 20 initial labels + 15 rounds of 20,
MLP with one hidden layer of 128 (dropout 0.5 for the MC-dropout
strategies, 0 otherwise). `table`: the one model of the digits table for
every strategy, dropout 0.5, so the rows differ only in their query
(benchmarks/README.md). Each strategy's departures from its factory
defaults are in TUNED; `strategy.kw` lists every keyword.
"""

from configs.common import BAYESIAN, base_config, finish, parse
from al_jax.strategies import STRATEGIES

VARIANTS = ("table",)

TUNED = {
    # The loss module's gradient into the backbone stops after epoch 30 (of >= 50,
    # the paper's 120 of 200 scaled).
    "ll4al": {"kw": dict(detach_epoch=30)},
    # Fully connected VAE (8x8 inputs), 500 iterations per round; the
    # discriminator is 256 wide (the papers' 512 is for 32x32 images and makes
    # each round several times slower on a CPU).
    "vaal": {"kw": dict(disc_hidden=(256, 256))},
    "sraal": {"kw": dict(disc_hidden=(256,) * 4)},
    "ta_vaal": {"kw": dict(disc_hidden=(256, 256), detach_epoch=30)},
    **{n: {"model.dropout": 0.5} for n in BAYESIAN},  # MC dropout needs dropout
    # v of s_test from 5 held-out initial labels, not the rows the model fits.
    "isal": {"al.validation_size": 5},
}


def get_config(arg: str | None = None):
  name, flags = parse(arg, STRATEGIES, "entropy", VARIANTS)
  c = base_config()
  if "table" in flags:
    c.model.dropout = 0.5
  return finish(c, name, TUNED.get(name), flags)
