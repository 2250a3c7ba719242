"""ALFA-Mix (closed-form alpha, cap 0.2) on CIFAR-10 with ResNet-18: 1,000 initial + 10 x 1,000.

  python -m al_jax.main --config configs/alfa_mix_cifar10.py --workdir /tmp/al_alfa_mix_cifar \
      --config.data.data_dir=~/tensorflow_datasets

configs/common.py cifar10() with Nesterov momentum and 100 epochs. Needs
CIFAR-10 prepared in array_record format (README, "Datasets"); meant for a
GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.common import CIFAR10_100_EPOCHS, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("alfa_mix",), CIFAR10_100_EPOCHS)
