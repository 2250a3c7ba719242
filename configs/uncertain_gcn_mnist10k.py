"""UncertainGCN on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/uncertain_gcn_mnist10k.py \
      --workdir /tmp/al_uncertain_gcn_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20. The graph holds the
labelled rows plus a random subset of 2,000 unlabelled rows (al.subset_size)
so its dense adjacency stays small on a CPU.
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.al.subset_size = 2000
  c.strategy.name = "uncertain_gcn"
  c.strategy.kw = dict(hidden=128, dropout=0.3, lam=1.2, lr=1e-3, weight_decay=5e-4, num_steps=200,
                       s_margin=0.1)
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 64
  return c
