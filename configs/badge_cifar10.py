"""BADGE on CIFAR-10 with ResNet-18 as in JordanAsh/badge: 100 initial labels, 1,000 per round, 10 rounds.

  python -m al_jax.main --config configs/badge_cifar10.py --workdir /tmp/al_badge_cifar \
      --config.data.data_dir=~/tensorflow_datasets

The setting of the BADGE README (`--model resnet --nQuery 1000 --data
CIFAR10`, `--nStart` default 100): the model is re-initialised every round and trained with Adam,
learning rate 1e-4 (JordanAsh/badge default) and gradients clamped to +-0.1,
without augmentation. The reference trains until 99% training accuracy; we
train a fixed `train.num_epochs`, and stop after 10 rounds (the reference
goes on to 50,000 labels). Needs CIFAR-10 prepared in array_record
format (README, "Datasets"); meant for a GPU/TPU. The gradient embeddings are
kept as factors (h: 50k x 512, p - e_yhat: 50k x 10, about 100 MB) instead of
the 50k x 5,120 embedding. `:smoke` shrinks it (and the network) for CPU
tests.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "none"
  c.model_name = "resnet18"
  c.model = dict(width=64, dropout=0.0)
  c.al.initial_size = 100
  c.al.query_size = 1000
  c.al.num_rounds = 10
  c.al.warm_start = False
  c.strategy.name = "badge"
  c.strategy.kw = dict(bias=False)
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-4
  c.train.grad_clip = 0.1
  c.train.batch_size = 128
  c.train.num_epochs = 100
  c.train.min_steps = 0
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  return smoke(c) if arg == "smoke" else c
