"""BADGE (k-means++ on last-layer gradient embeddings) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/badge_mnist10k.py --workdir /tmp/al_badge_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20."""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "mnist_idx"
  c.data.path = "/work/shared/data/mnist-t10k"
  c.data.test_size = 2000
  c.model_name = "cnn"
  c.model = dict(filters=32, kernel_size=4, padding="VALID", dense=128,
                 dropout_conv=0.25, dropout_dense=0.5)
  c.al.initial_size = 20
  c.al.initial_balanced = True
  c.al.query_size = 20
  c.al.num_rounds = 20
  c.strategy.name = "badge"
  c.strategy.kw = dict(bias=False)
  c.train.batch_size = 64
  c.train.num_epochs = 50
  c.train.min_steps = 300
  return smoke(c) if arg == "smoke" else c
