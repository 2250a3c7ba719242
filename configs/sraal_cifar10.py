"""SRAAL on CIFAR-10, the paper's protocol (Zhang et al. 2020) as in Beichen1996/SRAAL.

  python -m al_jax.main --config configs/sraal_cifar10.py --workdir /tmp/al_sraal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 task model (SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128, 200
epochs, flip + crop, retrained from scratch), 5,000 initial labels + 6 rounds
of 2,500 (10% to 40% of the pool); the VAE (latent 200, conv encoder (128,
256, 512, 1024)) and discriminator train 20,000 iterations at batch 250
(Adam 5e-4, 2 VAE steps per discriminator step) on the labelled rows and the
whole unlabelled pool, which the query ranks. The VAE/discriminator learning rate is
multiplied by 0.85 every 20,000 // 30 iterations, as the reference. Needs CIFAR-10 prepared in
array_record format (README, "Datasets"); meant for a GPU/TPU. `:smoke`
shrinks it (and the networks) for CPU tests.
"""

from configs.common import VAE_CIFAR10, cifar10_config, multistep, train_schedule

ITERATIONS = 20000
# VAE and discriminator: learning rate x 0.85 every 20,000 // 30 iterations
# after the first (solver.py:46,72-76); a schedule epoch is one iteration.
VAE_SCHEDULE = multistep(tuple(k * (ITERATIONS // 30) for k in range(1, 31)), factor=0.85)
PROTOCOL = {
    "al.initial_size": 5000, "al.query_size": 2500, "al.num_rounds": 6, "al.subset_size": 0,
    # MultiStepLR([200]) over 200 epochs: never decays.
    **train_schedule(multistep((200, 300))),
    "kw": dict(z_dim=200, beta=1.0, adversary_weight=1.0, recon_weight=5.0, ce_weight=5.0,
               dense=256, disc_hidden=(512, 512, 512, 512), cls_hidden=(1024, 256), lr=5e-4,
               num_steps=ITERATIONS, batch_size=250, vae_steps=2, adv_steps=1,
               schedule=VAE_SCHEDULE)}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("sraal",), VAE_CIFAR10, PROTOCOL)
