"""DFAL (DeepFool, smallest perturbation first) on CIFAR-10 under the Sequential-GCN protocol.

  python -m al_jax.main --config configs/dfal_cifar10.py --workdir /tmp/al_dfal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Ducoffe & Precioso (2018) report no CIFAR-10 protocol; DFAL runs the
ResNet-18 re-run protocol of razvancaramalau/Sequential-GCN-for-Active-Learning
(as margin_cifar10.py), max_iter 50 (ej0cl6/deep-active-learning) and
overshoot 0.02 (DeepFool). The paper's labelling of each query's DeepFool
counterpart is not implemented (docs/protocols.md). Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.subset_size = 10000  # DeepFool on a random 10k subset of the pool each round.
  c.strategy.name = "dfal"
  c.strategy.kw = dict(max_iter=50, overshoot=0.02)
  c.al.num_rounds = 9
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 0  # The smoke pool is smaller than the subset.
  return c
