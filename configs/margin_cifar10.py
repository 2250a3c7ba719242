"""Margin sampling on CIFAR-10 under the Sequential-GCN protocol (Caramalau et al. 2021).

  python -m al_jax.main --config configs/margin_cifar10.py --workdir /tmp/al_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Margin sampling has no deep CIFAR-10 protocol of its own; it runs the
ResNet-18 re-run protocol of razvancaramalau/Sequential-GCN-for-Active-Learning
(1,000 initial + 9 rounds of 1,000, a random 10,000-image candidate subset,
SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128, 200 epochs, milestones [160,
240]), the baseline protocol of uncertain_gcn_cifar10.py. Sources:
docs/protocols.md. Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.strategy.name = "margin"
  c.al.num_rounds = 9
  c.al.subset_size = 10000
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 32
  return c
