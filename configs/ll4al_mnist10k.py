"""LL4AL on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/ll4al_mnist10k.py --workdir /tmp/al_ll4al_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20. The loss module reads
conv1, conv2 and the dense layer; the query scores a random subset of 2,000
unlabelled rows (al.subset_size; set 0 for the whole pool).
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.al.subset_size = 2000
  c.strategy.name = "ll4al"
  c.strategy.kw = dict(weight=1.0, margin=1.0, detach_epoch=30, hidden=128,
                       module_optimizer="adam", module_lr=1e-3, ranking="margin")
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 64
  return c
