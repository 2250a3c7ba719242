"""Diversity strategies (coreset by default) on CIFAR-10, Sener & Savarese's (2018) protocol.

VGG16-BN, SGD 0.1 / momentum 0.9 / wd 5e-4 at a constant rate, batch 128, 200
epochs, flip + crop (ozansener/active_learning_coreset additional_baselines/
main.py); 5,000 initial labels + 7 rounds of 5,000 (the paper's 10% steps, to
40,000). Every value and its source: docs/protocols.md; the other diversity
strategies run under the same protocol.

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

from configs.coreset_digits import DIVERSITY
from configs.default import base_config, parse, smoke, strategy_kw


def get_config(arg: str | None = None):
  name, is_smoke = parse(arg, DIVERSITY, "coreset")
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "vgg16_bn"
  c.model = {"width_scale": 1.0, "dropout": 0.0}
  c.al.initial_size = 5000
  c.al.query_size = 5000
  c.al.num_rounds = 7
  c.strategy.name = name
  c.strategy.kw = strategy_kw(name)
  if name == "coreset_mip":  # The MIP needs candidates beyond the 1,000 greedy picks.
    c.strategy.kw.update(max_candidates=3000)
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.1
  c.train.momentum = 0.9
  c.train.nesterov = False
  c.train.weight_decay = 5e-4
  c.train.batch_size = 128
  c.train.num_epochs = 200
  c.train.min_steps = 0
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  return smoke(c) if is_smoke else c
