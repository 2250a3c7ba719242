"""Every registered strategy on scikit-learn digits under one protocol.

  python benchmarks/accuracy.py --config configs/table_digits.py --per_strategy \
      --strategies all --seeds 3 --out benchmarks/results/table_digits

The argument names the strategy (default entropy), optionally followed by
",smoke". Data and schedule as configs/default.py (1,350-image pool, 20
initial labels + 15 rounds of 20). One model for every row: the MLP with one
hidden layer of 128 and dropout 0.5, because the MC-dropout strategies need
dropout and the rows should differ only in their query. Hyperparameters:
the strategy's own configs/NAME_digits.py where there is one, its factory
defaults otherwise.
"""

from configs.default import base_config, table_config


def get_config(arg: str | None = None):
  c = base_config()
  c.model = dict(hidden=(128,), dropout=0.5)
  return table_config(c, arg, "digits")
