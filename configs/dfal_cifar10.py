"""DFAL (DeepFool, smallest perturbation first) on CIFAR-10 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/dfal_cifar10.py --workdir /tmp/al_dfal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "resnet18"
  c.model = dict(width=64, dropout=0.0)
  c.al.initial_size = 1000
  c.al.query_size = 1000
  c.al.num_rounds = 10
  c.al.subset_size = 10000  # DeepFool on a random 10k subset of the pool each round.
  c.strategy.name = "dfal"
  c.strategy.kw = dict(max_iter=50, overshoot=0.02)
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
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 0  # The smoke pool is smaller than the subset.
  return c
