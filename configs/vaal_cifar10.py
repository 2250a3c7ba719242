"""VAAL on CIFAR-10, the papers' protocol (Sinha et al. 2019).

  python -m al_jax.main --config configs/vaal_cifar10.py --workdir /tmp/al_vaal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 task model, 1,000 initial labels + 10 rounds of 1,000; the VAE
(conv encoder (128, 256, 512, 1024)) and discriminator train on the labelled
rows and a random subset of 10,000 unlabelled images (al.subset_size), which
the query ranks. Iterations per round: (1000 * round + 10000) * 100 / 128 in
the GCN/TA-VAAL code; we use a fixed 8,000 (about 100 epochs of the first
round's 11,000 rows at batch 128 per set). The task model as cifar10() in
configs/common.py. Meant for a GPU/TPU.
"""

from configs.common import SUBSET_CIFAR10, VAE_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("vaal",), SUBSET_CIFAR10, VAE_CIFAR10)
