"""Entropy sampling on TFDS MNIST with the Gal et al. (2017) CNN.

  python -m al_jax.main --config configs/entropy_mnist.py --workdir /tmp/al_mnist \
      --config.data.data_dir=~/tensorflow_datasets

Needs MNIST prepared in array_record format (see README, "Datasets").
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "mnist"
  c.data.test_size = 10000  # unused for TFDS (it has a test split)
  c.model_name = "cnn"
  c.model = dict(filters=32, kernel_size=4, padding="VALID", dense=128,
                 dropout_conv=0.25, dropout_dense=0.5)
  c.al.initial_size = 20
  c.al.initial_balanced = True
  c.al.query_size = 10
  c.al.num_rounds = 100
  c.strategy.name = "entropy"
  c.train.batch_size = 128
  c.train.num_epochs = 50
  c.train.min_steps = 500
  return smoke(c) if arg == "smoke" else c
