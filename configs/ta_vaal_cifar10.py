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

from configs.common import (MILESTONES_160_240, SUBSET_CIFAR10, VAE_CIFAR10, cifar10_config,
                            train_schedule)

# Loss module: SGD as the backbone, on the same milestones (main.py, sched_module).
PROTOCOL = {"al.num_rounds": 9, **train_schedule(MILESTONES_160_240),
            "kw": dict(z_dim=32, beta=1.0, adversary_weight=1.0, recon_weight=1.0,
                       dense=256, disc_hidden=(512, 512), lr=5e-4, vae_steps=1, adv_steps=1,
                       loss_weight=1.0, margin=1.0, detach_epoch=120, loss_hidden=128,
                       module_optimizer="sgd", module_lr=0.1,
                       module_schedule=MILESTONES_160_240)}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("ta_vaal",), SUBSET_CIFAR10, VAE_CIFAR10, PROTOCOL)
