"""Margin sampling on CIFAR-10 with ResNet-18 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/margin_cifar10.py --workdir /tmp/al_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.strategy.name = "margin"
  c.train.nesterov = True
  c.train.num_epochs = 100
  return smoke(c) if arg == "smoke" else c
