"""Any strategy (default entropy) on TFDS MNIST with the Gal et al. (2017) CNN.

  python -m al_jax.main --config configs/mnist.py --workdir /tmp/al_mnist \
      --config.data.data_dir=~/tensorflow_datasets

The 60,000 training images are the pool, the 10,000 test images the test
set; 20 balanced initial labels + 100 rounds of 10, at least 500 steps of
batch 128 per round. The argument is 'NAME[,smoke]'. Needs MNIST prepared in
array_record format (README, "Datasets").
"""

from configs.common import base_config, finish, mnist10k, parse
from al_jax.strategies import STRATEGIES


def get_config(arg: str | None = None):
  name, flags = parse(arg, STRATEGIES, "entropy")
  return finish(mnist10k(base_config()), name, {
      "data.name": "mnist", "data.test_size": 10000,  # unused for TFDS (it has a test split)
      "al.query_size": 10, "al.num_rounds": 100,
      "train.batch_size": 128, "train.num_epochs": 50, "train.min_steps": 500}, flags)
