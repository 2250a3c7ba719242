"""ALFA-Mix (closed-form alpha, cap 0.2) on CIFAR-10 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/alfa_mix_cifar10.py --workdir /tmp/al_alfa_mix_cifar \
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
  c.strategy.name = "alfa_mix"
  c.strategy.kw = dict(alpha_cap=0.2, alpha_mode="closed_form", alpha_grid=10, kmeans_iters=20)
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
  return smoke(c) if arg == "smoke" else c
