"""WAAL on CIFAR-10 with VGG16-BN (the WAAL paper's feature extractor): 1,000 initial + 10 x 1,000.

  python -m al_jax.main --config configs/waal_cifar10.py --workdir /tmp/al_waal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

configs/common.py cifar10() with Nesterov momentum and 100 epochs; meant for
a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.common import CIFAR10_100_EPOCHS, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("waal",), CIFAR10_100_EPOCHS, {
      "model_name": "vgg16_bn", "model": dict(width_scale=1.0, dropout=0.0)})
