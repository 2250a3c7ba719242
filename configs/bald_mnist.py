"""Gal, Islam & Ghahramani (2017), "Deep Bayesian Active Learning with Image Data", MNIST.

Their protocol: the 4x4-conv CNN with dropout, 20 balanced initial labels,
10 acquired per round for 100 rounds, each round scoring a random 2,000-point
subset of the unlabelled pool with K = 20 MC-dropout samples, retraining from
scratch. Here on the 10,000 MNIST t10k images (8,000 pool / 2,000 test, split
by the seed), which the package ships (data.name 'mnist10k'):

  python -m al_jax.main --config configs/bald_mnist.py:bald --workdir /tmp/bald_mnist

The argument names the strategy: bald (default), bayesian_entropy (their "Max
Entropy"), variation_ratios, random, or any other MC-dropout strategy
(configs/common.py BAYESIAN), optionally followed by ",smoke".
benchmarks/bald_mnist.py runs the reduced protocol of benchmarks/README.md (Bayesian section).
"""

from al_jax.config_utils import factory_kw
from configs.common import BAYESIAN, base_config, finish, mnist10k, parse


def get_config(arg: str | None = None):
  name, flags = parse(arg, BAYESIAN + ("random",), "bald")
  protocol = {
      "al.query_size": 10, "al.num_rounds": 100, "al.subset_size": 2000,
      "train.batch_size": 128, "train.num_epochs": 50, "train.min_steps": 0,
      # CPU: XLA runs conv gradients ~10x slower inside a while loop (al_jax/train.py).
      "train.unroll_steps": True,
      "score.batch_size": 500}
  if "num_samples" in factory_kw(name):
    protocol["smoke"] = {"strategy.kw.num_samples": 3}
  return finish(mnist10k(base_config()), name, protocol, flags)
