"""TA-VAAL on CIFAR-10 (Kim et al. 2021), in the VAAL protocol of configs/vaal_cifar10.py.

  python -m al_jax.main --config configs/ta_vaal_cifar10.py --workdir /tmp/al_ta_vaal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

The VAE and discriminator as VAAL's, one VAE step per discriminator step;
the loss-prediction module as LL4AL's (SGD 0.1, detached after epoch 120).
Meant for a GPU/TPU.
"""

from configs.common import SUBSET_CIFAR10, VAE_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("ta_vaal",), SUBSET_CIFAR10, VAE_CIFAR10,
                        {"kw": dict(module_optimizer="sgd", module_lr=0.1)})
