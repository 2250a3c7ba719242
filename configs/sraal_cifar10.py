"""SRAAL on CIFAR-10, the paper's protocol (Zhang et al. 2020) as in Beichen1996/SRAAL.

  python -m al_jax.main --config configs/sraal_cifar10.py --workdir /tmp/al_sraal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 task model (SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128, 200
epochs, flip + crop, retrained from scratch), 5,000 initial labels + 6 rounds
of 2,500 (10% to 40% of the pool); the VAE (latent 200, conv encoder (128,
256, 512, 1024)) and discriminator train 20,000 iterations at batch 250
(Adam 5e-4, 2 VAE steps per discriminator step) on the labelled rows and the
whole unlabelled pool, which the query ranks. The reference multiplies the
VAE/discriminator learning rate by 0.85 every 20,000 // 30 iterations; ours
stays constant (docs/protocols.md, departures). Needs CIFAR-10 prepared in
array_record format (README, "Datasets"); meant for a GPU/TPU. `:smoke`
shrinks it (and the networks) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.initial_size = 5000
  c.al.query_size = 2500
  c.al.num_rounds = 6
  c.al.subset_size = 0
  c.strategy.name = "sraal"
  c.strategy.kw = dict(z_dim=200, beta=1.0, adversary_weight=1.0, recon_weight=5.0, ce_weight=5.0,
                       channels=(128, 256, 512, 1024), dense=256, disc_hidden=(512, 512, 512, 512),
                       cls_hidden=(1024, 256), lr=5e-4, num_steps=20000, batch_size=250,
                       vae_steps=2, adv_steps=1, eval_batch=1000)
  if arg == "smoke":
    c = smoke(c)
    c.strategy.kw.num_steps = 20
    c.strategy.kw.batch_size = 8
    c.strategy.kw.channels = ()  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
  return c
