"""Diversity strategies (coreset by default) on CIFAR-10 with ResNet-18.

1,000 initial labels, 1,000 per round, 10 rounds.

  python -m al_jax.main --config configs/coreset_cifar10.py --workdir /tmp/al_coreset_cifar \
      --config.data.data_dir=~/tensorflow_datasets
  python -m al_jax.main --config configs/coreset_cifar10.py:typiclust --workdir /tmp/al_tc_cifar \
      --config.data.data_dir=~/tensorflow_datasets

The argument names one of coreset, coreset_mip, kmeans, typiclust, probcover,
cluster_margin (default coreset), optionally followed by ",smoke"; the
strategy's hyperparameters are listed in `strategy.kw` with their defaults.
Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. The 50k x 512 embeddings take 100 MB; k-center greedy keeps
one 50k min-distance vector (DeepAL+ builds a 10 GB distance matrix).
"""

import inspect

from configs.default import base_config, smoke

DIVERSITY = ("coreset", "coreset_mip", "kmeans", "typiclust", "probcover", "cluster_margin")


def _parse(arg):
  parts = [p for p in (arg or "").split(",") if p]
  names = [p for p in parts if p != "smoke"]
  if len(names) > 1 or (names and names[0] not in DIVERSITY):
    raise ValueError(f"config argument {arg!r}: expected one of {DIVERSITY}, optionally ',smoke'")
  return (names[0] if names else "coreset"), "smoke" in parts


def _kw(name):
  from al_jax.strategies import STRATEGIES  # Defaults come from the factory itself.
  return {k: p.default for k, p in inspect.signature(STRATEGIES[name]).parameters.items()
          if k != "fns"}


def get_config(arg: str | None = None):
  name, is_smoke = _parse(arg)
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "resnet18"
  c.model = {"width": 64, "dropout": 0.0}
  c.al.initial_size = 1000
  c.al.query_size = 1000
  c.al.num_rounds = 10
  c.strategy.name = name
  c.strategy.kw = _kw(name)
  if name == "coreset_mip":  # The MIP needs candidates beyond the 1,000 greedy picks.
    c.strategy.kw.update(max_candidates=3000, time_limit=60.0)
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.1
  c.train.momentum = 0.9
  c.train.nesterov = True
  c.train.weight_decay = 5e-4
  c.train.batch_size = 128
  c.train.num_epochs = 100
  c.train.min_steps = 0
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  return smoke(c) if is_smoke else c
