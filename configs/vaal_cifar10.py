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

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip"
  c.model_name = "vgg16_bn"
  c.model = dict(width_scale=1.0, dropout=0.0)
  c.al.initial_size = 5000
  c.al.query_size = 2500
  c.al.num_rounds = 6
  c.al.subset_size = 0
  c.al.warm_start = False
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.01
  c.train.momentum = 0.9
  c.train.nesterov = False
  c.train.weight_decay = 5e-4
  c.train.batch_size = 128
  # A fixed step count per split, as the reference: one epoch at least, then
  # whole epochs up to 39,062 steps. Schedule (x0.1 at steps 9,765 / 19,530 /
  # 29,295) lives in configs/protocols.json until train.schedule exists.
  c.train.num_epochs = 1
  c.train.min_steps = 39062
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  c.strategy.name = "vaal"
  c.strategy.kw = dict(z_dim=32, beta=1.0, adversary_weight=1.0, recon_weight=1.0,
                       channels=(128, 256, 512, 1024), dense=256, disc_hidden=(512, 512),
                       lr=5e-4, num_steps=39062, batch_size=128,
                       vae_steps=2, adv_steps=1, eval_batch=1000)
  if arg == "smoke":
    c = smoke(c)
    c.strategy.kw.num_steps = 20
    c.strategy.kw.batch_size = 8
    c.strategy.kw.channels = ()  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
  return c
