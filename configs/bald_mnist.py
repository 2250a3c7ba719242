"""Gal, Islam & Ghahramani (2017), "Deep Bayesian Active Learning with Image Data", MNIST.

Their protocol: the 4x4-conv CNN with dropout, 20 balanced initial labels,
10 acquired per round for 100 rounds, each round scoring a random 2,000-point
subset of the unlabelled pool with K = 20 MC-dropout samples, retraining from
scratch. Here on the 10,000 MNIST t10k images (8,000 pool / 2,000 test, split
by the seed), which the repository ships:

  python -m al_jax.main --config configs/bald_mnist.py:bald --workdir /tmp/bald_mnist \
      --config.data.path=/work/shared/data/mnist-t10k

The argument names the strategy: bald (default), bayesian_entropy (their "Max
Entropy"), variation_ratios, random, or any Bayesian strategy of
configs/bayesian_digits.py, optionally followed by ",smoke".
benchmarks/bald_mnist.py runs the reduced protocol of benchmarks/README.md (Bayesian section).
"""

from configs.bayesian_digits import BAYESIAN
from configs.default import base_config, parse, smoke, strategy_kw


def get_config(arg: str | None = None):
  name, is_smoke = parse(arg, BAYESIAN + ("random",), "bald")
  c = base_config()
  c.data.name = "mnist_idx"
  c.data.path = "/work/shared/data/mnist-t10k"
  c.data.test_size = 2000
  c.model_name = "cnn"
  c.model = dict(filters=32, kernel_size=4, padding="VALID", dense=128,
                 dropout_conv=0.25, dropout_dense=0.5)
  c.al.initial_size = 20
  c.al.initial_balanced = True
  c.al.query_size = 10
  c.al.num_rounds = 100
  c.al.subset_size = 2000
  c.strategy.name = name
  c.strategy.kw = strategy_kw(name)
  c.train.batch_size = 128
  c.train.num_epochs = 50
  c.train.min_steps = 0
  # CPU: XLA runs conv gradients ~10x slower inside a while loop (al_jax/train.py).
  c.train.unroll_steps = True
  c.score.batch_size = 500
  if is_smoke:
    c = smoke(c)
    c.al.subset_size = 64
    c.model.filters = 4
    c.model.dense = 16
    if "num_samples" in c.strategy.kw:
      c.strategy.kw.num_samples = 3
  return c
