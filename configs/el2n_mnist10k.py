"""EL2N (||softmax - onehot(predicted label)||) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/el2n_mnist10k.py --workdir /tmp/al_el2n_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20."""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "el2n"
  c.strategy.kw = dict(at="trained", num_inits=1)
  return smoke(c) if arg == "smoke" else c
