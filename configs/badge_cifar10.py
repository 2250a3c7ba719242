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

from configs.common import cifar10_config

PROTOCOL = {
    "data.augment": "none", "al.initial_size": 100,
    "train.optimizer": "adam", "train.learning_rate": 1e-4, "train.grad_clip": 0.1,
    "train.weight_decay": 0.0, "train.num_epochs": 100, "kw": dict(bias=False)}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("badge",), PROTOCOL)
