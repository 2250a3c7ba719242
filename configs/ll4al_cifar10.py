"""LL4AL on CIFAR-10, the paper's protocol (Yoo & Kweon 2019).

  python -m al_jax.main --config configs/ll4al_cifar10.py --workdir /tmp/al_ll4al_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 (its 4 stage outputs feed the loss module), 1,000 initial labels +
10 rounds of 1,000, each query the top predicted loss among a random subset
of 10,000 unlabelled images; SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128,
200 epochs, module gradient into the backbone stopped after epoch 120, the
module trained with SGD 0.1 as the backbone. Meant for a GPU/TPU.
"""

from configs.common import SUBSET_CIFAR10, cifar10_config


def get_config(arg: str | None = None):
  return cifar10_config(arg, ("ll4al",), SUBSET_CIFAR10,
                        {"kw": dict(module_optimizer="sgd", module_lr=0.1)})
