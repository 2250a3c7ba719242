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

from configs.common import cifar10_config

PROTOCOL = {
    "model_name": "vgg16_bn", "model": dict(width_scale=1.0, dropout=0.0),
    "al.num_rounds": 5,
    "train.learning_rate": 0.01, "train.momentum": 0.3, "train.weight_decay": 0.0,
    "train.batch_size": 64, "train.num_epochs": 80,
    "kw": dict(alpha=2e-3, gamma=1.0, gp_weight=2.0, selection=10.0, critic_hidden=50,
               critic_lr=1e-3, critic_dropout=0.5, long_epoch=True)}


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("waal",), PROTOCOL)
