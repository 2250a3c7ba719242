"""SRAAL on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/sraal_digits.py --workdir /tmp/al_sraal_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
The VAE is fully connected (8x8 inputs) and trains 500 iterations per round;
the discriminator is 256 wide (the papers' 512 is for 32x32 images and makes
each round several times slower on a CPU).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "sraal"
  c.strategy.kw = dict(z_dim=64, beta=1.0, adversary_weight=1.0, recon_weight=5.0, ce_weight=5.0,
                       channels=(), dense=256, disc_hidden=(256, 256, 256, 256),
                       cls_hidden=(1024, 256), lr=5e-4, num_steps=500, batch_size=64,
                       vae_steps=2, adv_steps=1, eval_batch=512)
  if arg == "smoke":
    c = smoke(c)
    c.strategy.kw.num_steps = 20
    c.strategy.kw.batch_size = 8
    c.strategy.kw.channels = ()  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
  return c
