"""TA-VAAL on CIFAR-10, the paper's protocol (Kim et al. 2021) as in cubeyoung/TA-VAAL.

  python -m al_jax.main --config configs/ta_vaal_cifar10.py --workdir /tmp/al_ta_vaal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 task model with the loss module (re-initialised every cycle),
1,000 initial labels + 9 rounds of 1,000 (to 10,000 labels); the VAE (conv
encoder (128, 256, 512, 1024)) and discriminator train on the labelled rows
and a random subset of 10,000 unlabelled images (al.subset_size), which the
query ranks. VAE iterations per round: (1000 * round + 10000) * 100 / 128 in
the reference; we use a fixed 8,000. SGD 0.1 / momentum 0.9 / wd 5e-4,
batch 128, 200 epochs, milestones [160, 240]. Every value and its source:
docs/protocols.md. Needs CIFAR-10 prepared in array_record format (README,
"Datasets"); meant for a GPU/TPU. `:smoke` shrinks it (and the networks) for
CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.num_rounds = 9
  c.al.subset_size = 10000
  c.strategy.name = "ta_vaal"
  c.strategy.kw = dict(z_dim=32, beta=1.0, adversary_weight=1.0, recon_weight=1.0,
                       channels=(128, 256, 512, 1024), dense=256, disc_hidden=(512, 512),
                       lr=5e-4, num_steps=8000, batch_size=128,
                       vae_steps=1, adv_steps=1, eval_batch=1000, loss_weight=1.0, margin=1.0,
                       detach_epoch=120, loss_hidden=128, module_optimizer="sgd", module_lr=0.1)
  if arg == "smoke":
    c = smoke(c)
    c.strategy.kw.num_steps = 20
    c.strategy.kw.batch_size = 8
    c.strategy.kw.channels = ()  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
    c.al.subset_size = 32
  return c
