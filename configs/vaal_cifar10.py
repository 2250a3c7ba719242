"""VAAL on CIFAR-10, the paper's protocol (Sinha et al. 2019) as in sinhasam/vaal.

  python -m al_jax.main --config configs/vaal_cifar10.py --workdir /tmp/al_vaal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

VGG16-BN task model, 5,000 initial labels + 6 rounds of 2,500 (10% to 40%
of the pool), retrained from scratch each round; horizontal flips only. The
reference runs a fixed 50,000 * 100 // 128 = 39,062 iterations per split for
the task model (SGD 0.01 / momentum 0.9 / wd 5e-4, learning rate / 10 at each
quarter) and for the VAE (conv encoder (128, 256, 512, 1024), z 32) and
discriminator (Adam 5e-4, 2 VAE steps per discriminator step), which see the
whole unlabelled pool. Every value and its source: docs/protocols.md. Needs
CIFAR-10 prepared in array_record format (README, "Datasets"); meant for a
GPU/TPU. `:smoke` shrinks it (and the networks) for CPU tests.
"""

from configs.common import VAE_CIFAR10, cifar10_config, multistep, train_schedule

STEPS = 50000 * 100 // 128  # 39,062 iterations per split (solver.py:41)
PROTOCOL = {
    "data.augment": "flip", "model_name": "vgg16_bn",
    "model": dict(width_scale=1.0, dropout=0.0),
    "al.initial_size": 5000, "al.query_size": 2500, "al.num_rounds": 6, "al.subset_size": 0,
    "train.learning_rate": 0.01, "train.num_epochs": 1, "train.min_steps": STEPS,
    # Task model: learning rate / 10 at each quarter of the iterations.
    **train_schedule(multistep((STEPS // 4, 2 * (STEPS // 4), 3 * (STEPS // 4)), unit="steps")),
    "kw": dict(z_dim=32, beta=1.0, adversary_weight=1.0, recon_weight=1.0, dense=256,
               disc_hidden=(512, 512), lr=5e-4, num_steps=STEPS, batch_size=128,
               vae_steps=2, adv_steps=1)}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("vaal",), VAE_CIFAR10, PROTOCOL)
