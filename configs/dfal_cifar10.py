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

from configs.common import MILESTONES_160_240, cifar10_config, train_schedule

# DeepFool on a random 10k subset of the pool each round; the smoke pool is scored whole.
PROTOCOL = {"al.num_rounds": 9, "al.subset_size": 10000, **train_schedule(MILESTONES_160_240),
            "kw": dict(max_iter=50, overshoot=0.02), "smoke": {"al.subset_size": 0}}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("dfal",), PROTOCOL)
