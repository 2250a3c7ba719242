"""CoreGCN on CIFAR-10, the paper's protocol (Caramalau et al. 2021).

  python -m al_jax.main --config configs/core_gcn_cifar10.py --workdir /tmp/al_core_gcn_cifar \
      --config.data.data_dir=~/tensorflow_datasets

configs/common.py cifar10() (ResNet-18, SGD 0.1, 200 epochs); each round's
graph holds the labelled rows plus a random subset of 10,000 unlabelled
images (dense adjacency of up to 21,000^2 floats, 1.8 GB: meant for a
GPU/TPU). The GCN keeps its factory defaults. `:smoke` shrinks it for CPU tests.
"""

from configs.common import SUBSET_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("core_gcn",), SUBSET_CIFAR10)
