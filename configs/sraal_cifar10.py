"""SRAAL on CIFAR-10 (Zhang et al. 2020), in the VAAL protocol of configs/vaal_cifar10.py.

  python -m al_jax.main --config configs/sraal_cifar10.py --workdir /tmp/al_sraal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

The VAE and discriminator as VAAL's (8,000 iterations per round on the
labelled rows and 10,000 random unlabelled images), with SRAAL's 200-wide
latent space. Meant for a GPU/TPU.
"""

from configs.common import SUBSET_CIFAR10, VAE_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("sraal",), SUBSET_CIFAR10, VAE_CIFAR10, {"kw": dict(z_dim=200)})
