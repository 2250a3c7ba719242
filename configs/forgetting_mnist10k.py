"""Forgetting events (predicted-label flips across training epochs) on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/forgetting_mnist10k.py --workdir /tmp/al_forgetting_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20."""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "forgetting"
  c.strategy.kw = dict(tie_break="entropy", chunk=512)
  return smoke(c) if arg == "smoke" else c
