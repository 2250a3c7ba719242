"""DFAL (DeepFool, smallest perturbation first) on CIFAR-10 with ResNet-18: 1,000 initial + 10 x 1,000.

  python -m al_jax.main --config configs/dfal_cifar10.py --workdir /tmp/al_dfal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

configs/common.py cifar10() with Nesterov momentum and 100 epochs; DeepFool
runs on a random 10,000-row subset of the pool each round. Meant for a
GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.common import CIFAR10_100_EPOCHS, cifar10_config


def get_config(arg: str | None = None):
  # The smoke pool is scored whole.
  return cifar10_config(arg, ("dfal",), CIFAR10_100_EPOCHS,
                        {"al.subset_size": 10000, "smoke": {"al.subset_size": 0}})
