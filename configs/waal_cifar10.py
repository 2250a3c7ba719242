"""WAAL on CIFAR-10 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/waal_cifar10.py --workdir /tmp/al_waal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "vgg16_bn"  # the WAAL paper's feature extractor
  c.model = dict(width_scale=1.0, dropout=0.0)
  c.al.initial_size = 1000
  c.al.query_size = 1000
  c.al.num_rounds = 10
  c.strategy.name = "waal"
  c.strategy.kw = dict(alpha=2e-3, gamma=1.0, gp_weight=2.0, selection=10.0, critic_hidden=50,
                       critic_lr=1e-3)
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
