"""Uncertainty, Bayesian, coreset and BADGE strategies on MNIST-10k under one protocol.

  python benchmarks/accuracy.py --config configs/table_mnist10k.py --per_strategy \
      --strategies least_confidence,entropy,margin,bayesian_lc,bayesian_entropy,bald,\
variation_ratios,batchbald,coreset,badge --seeds 3 --out benchmarks/results/table_mnist10k

The argument names the strategy (default entropy), optionally followed by
",smoke". The MNIST t10k IDX files (../shared/data/mnist-t10k) split into an
8,000-image pool and 2,000 test images, 20 balanced initial labels + 20
rounds of 20, at least 300 steps of batch 64 per round (configs/default.py
`mnist10k`). The model is an MLP (one hidden layer of 256, dropout 0.5)
rather than the Gal et al. CNN of configs/*_mnist10k.py: the CNN costs
~50 minutes per run on the 2-core CPU this table is measured on, the MLP
about a minute. Hyperparameters: the strategy's own configs/NAME_mnist10k.py
where there is one, its factory defaults otherwise.
"""

from configs.default import base_config, mnist10k, table_config


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.model_name = "mlp"
  c.model = dict(hidden=(256,), dropout=0.5)
  return table_config(c, arg, "mnist10k")
