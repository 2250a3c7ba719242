"""DFAL (DeepFool, smallest perturbation first) on CIFAR-10 (1,000 initial, 1,000 per round).

  python -m al_jax.main --config configs/dfal_cifar10.py --workdir /tmp/al_dfal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.subset_size = 10000  # DeepFool on a random 10k subset of the pool each round.
  c.strategy.name = "dfal"
  c.strategy.kw = dict(max_iter=50, overshoot=0.02)
  c.train.nesterov = True
  c.train.num_epochs = 100
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 0  # The smoke pool is smaller than the subset.
  return c
