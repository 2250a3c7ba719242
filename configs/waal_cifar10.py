"""WAAL on CIFAR-10, the paper's protocol (Shui et al. 2020) as in cjshui/WAAL.

  python -m al_jax.main --config configs/waal_cifar10.py --workdir /tmp/al_waal_cifar \
      --config.data.data_dir=~/tensorflow_datasets

VGG16-BN features, 1,000 initial labels + 5 rounds of 1,000, retrained from
scratch each round; SGD 0.01 / momentum 0.3, no weight decay, batch 64, 80
epochs, flip + crop; alpha 2e-3, selection 10; an epoch runs over the longer
of the labelled and unlabelled sets and the critic has dropout 0.5, as the
reference. Its critic trains with SGD on an alpha-scaled loss; ours with Adam
(docs/protocols.md, departures).
Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "vgg16_bn"  # the WAAL paper's feature extractor
  c.model = dict(width_scale=1.0, dropout=0.0)
  c.al.initial_size = 1000
  c.al.query_size = 1000
  c.al.num_rounds = 5
  c.strategy.name = "waal"
  c.strategy.kw = dict(alpha=2e-3, gamma=1.0, gp_weight=2.0, selection=10.0, critic_hidden=50,
                       critic_lr=1e-3, critic_dropout=0.5, long_epoch=True)
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.01
  c.train.momentum = 0.3
  c.train.nesterov = False
  c.train.weight_decay = 0.0
  c.train.batch_size = 64
  c.train.num_epochs = 80
  c.train.min_steps = 0
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  return smoke(c) if arg == "smoke" else c
