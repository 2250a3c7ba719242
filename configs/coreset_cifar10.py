"""Diversity strategies (coreset by default) on CIFAR-10 with ResNet-18: 1,000 initial + 10 x 1,000.

  python -m al_jax.main --config configs/coreset_cifar10.py --workdir /tmp/al_coreset_cifar \
      --config.data.data_dir=~/tensorflow_datasets
  python -m al_jax.main --config configs/coreset_cifar10.py:typiclust --workdir /tmp/al_tc_cifar \
      --config.data.data_dir=~/tensorflow_datasets

The argument names one of coreset, coreset_mip, kmeans, typiclust, probcover,
cluster_margin, optionally followed by ",smoke". configs/common.py cifar10()
with Nesterov momentum and 100 epochs; meant for a GPU/TPU. The 50k x 512
embeddings take 100 MB; k-center greedy keeps one 50k min-distance vector
(DeepAL+ builds a 10 GB distance matrix).
"""

from configs.common import CIFAR10_100_EPOCHS, DIVERSITY, cifar10_config

# The MIP needs candidates beyond the 1,000 greedy picks.
TUNED = {"coreset_mip": {"kw": dict(max_candidates=3000)}}


def get_config(arg: str | None = None):
  return cifar10_config(arg, DIVERSITY, CIFAR10_100_EPOCHS, tuned=TUNED)
