"""CoreGCN on CIFAR-10, the paper's protocol (Caramalau et al. 2021).

  python -m al_jax.main --config configs/core_gcn_cifar10.py --workdir /tmp/al_core_gcn_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18, 1,000 initial labels + 9 rounds of 1,000 (to 10,000 labels); each round's graph
holds the labelled rows plus a random subset of 10,000 unlabelled images
(dense adjacency of up to 21,000^2 floats, 1.8 GB: meant for a GPU/TPU).
SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128, 200 epochs, learning rate / 10
at epoch 160 (razvancaramalau/Sequential-GCN-for-Active-Learning config.py;
every value and its source: docs/protocols.md). Needs CIFAR-10
prepared in array_record format (README, "Datasets"). `:smoke` shrinks it
(and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.num_rounds = 9
  c.al.subset_size = 10000
  c.strategy.name = "core_gcn"
  c.strategy.kw = dict(hidden=128, dropout=0.3, lam=1.2, lr=1e-3, weight_decay=5e-4, num_steps=200,
                       block=256)
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 32
  return c
