"""ALFA-Mix (closed-form alpha, cap 0.2) on CIFAR-10 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/alfa_mix_cifar10.py --workdir /tmp/al_alfa_mix_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.strategy.name = "alfa_mix"
  c.strategy.kw = dict(alpha_cap=0.2, alpha_mode="closed_form", alpha_grid=10, kmeans_iters=20)
  c.train.nesterov = True
  c.train.num_epochs = 100
  return smoke(c) if arg == "smoke" else c
