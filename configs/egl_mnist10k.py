"""EGL (expected gradient length, full network) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/egl_mnist10k.py --workdir /tmp/al_egl_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20.
Each round scores a random 2,000-row subset of the pool (al.subset_size; 0 = all).
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.al.subset_size = 2000  # Full-network EGL costs C backward passes per pool row.
  c.strategy.name = "egl"
  c.strategy.kw = dict(last_layer=False, bias=True, microbatch_size=16)
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 0  # The smoke pool is smaller than the subset.
  return c
