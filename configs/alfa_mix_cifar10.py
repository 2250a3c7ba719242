"""ALFA-Mix (closed-form alpha, cap 0.2) on CIFAR-10, AminParvaneh/alpha_mix_active_learning's training.

  python -m al_jax.main --config configs/alfa_mix_cifar10.py --workdir /tmp/al_alfa_mix_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Training as the reference's defaults: Adam 1e-3 (README) with weight decay
5e-4, batch 64, 200 epochs, no augmentation, retrained each round. The
budgets (1,000 initial + 10 x 1,000) and ResNet-18 are ours: the paper's
CIFAR-10 budgets were not checked (docs/protocols.md). Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.strategy.name = "alfa_mix"
  c.strategy.kw = dict(alpha_cap=0.2, alpha_mode="closed_form", alpha_grid=10, kmeans_iters=20)
  c.data.augment = "none"
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-3
  c.train.weight_decay = 5e-4
  c.train.batch_size = 64
  c.train.num_epochs = 200
  return smoke(c) if arg == "smoke" else c
