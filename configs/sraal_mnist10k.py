"""SRAAL on MNIST-10k with the Gal et al. CNN.

  python -m al_jax.main --config configs/sraal_mnist10k.py --workdir /tmp/al_sraal_mnist10k \
      --config.data.path=/work/shared/data/mnist-t10k

The MNIST t10k IDX files split into an 8,000-image pool and 2,000 test
images; 20 balanced initial labels + 20 rounds of 20. Conv VAE (32, 64),
2,000 iterations per round over the whole pool.
"""

from configs.default import base_config, mnist10k, smoke


def get_config(arg: str | None = None):
  c = mnist10k(base_config())
  c.strategy.name = "sraal"
  c.strategy.kw = dict(z_dim=64, beta=1.0, adversary_weight=1.0, recon_weight=5.0, ce_weight=5.0,
                       channels=(32, 64), dense=256, disc_hidden=(512, 512, 512, 512),
                       cls_hidden=(1024, 256), lr=5e-4, num_steps=2000, batch_size=64,
                       vae_steps=2, adv_steps=1, eval_batch=512)
  if arg == "smoke":
    c = smoke(c)
    c.strategy.kw.num_steps = 20
    c.strategy.kw.batch_size = 8
    c.strategy.kw.channels = ()  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
  return c
