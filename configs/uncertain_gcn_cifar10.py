"""UncertainGCN (Caramalau et al. 2021) on CIFAR-10 with ResNet-18, the paper's protocol.

  python -m al_jax.main --config configs/uncertain_gcn_cifar10.py \
      --workdir /tmp/al_uncertain_gcn_cifar --config.data.data_dir=~/tensorflow_datasets

The shared cifar10() protocol of configs/common.py; the graph of each round
is built over the labelled rows and 10,000 random unlabelled images, and
the query takes the unlabelled nodes whose GCN confidence is closest to
s_margin (factory defaults throughout). Meant for a GPU/TPU.
"""

from configs.common import SUBSET_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("uncertain_gcn",), SUBSET_CIFAR10)
