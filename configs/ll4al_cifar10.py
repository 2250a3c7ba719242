"""LL4AL on CIFAR-10, the paper's protocol (Yoo & Kweon 2019) as in Mephisto405/Learning-Loss-for-Active-Learning.

  python -m al_jax.main --config configs/ll4al_cifar10.py --workdir /tmp/al_ll4al_cifar \
      --config.data.data_dir=~/tensorflow_datasets

ResNet-18 (its 4 stage outputs feed the loss module), 1,000 initial labels +
9 rounds of 1,000 (10 trainings, to 10,000 labels), each query the top
predicted loss among a random subset of 10,000 unlabelled images; backbone
and loss module built once and trained on across rounds (warm start);
SGD 0.1 / momentum 0.9 / wd 5e-4, batch 128, 200 epochs, learning rate / 10
at epoch 160, module gradient into the backbone stopped after epoch 120.
Every value and its source: docs/protocols.md (tested by tests/test_protocols.py).
Needs CIFAR-10 prepared in array_record format (README, "Datasets"); meant
for a GPU/TPU. `:smoke` shrinks it (and the network) for CPU tests.
"""

from configs.default import base_config, cifar10, smoke


def get_config(arg: str | None = None):
  c = cifar10(base_config())
  c.al.num_rounds = 9
  c.al.subset_size = 10000
  c.al.warm_start = True
  # Schedule (multistep x0.1 at epoch 160) lives in configs/protocols.json
  # until train.schedule exists (issue 16).
  c.strategy.name = "ll4al"
  c.strategy.kw = dict(weight=1.0, margin=1.0, detach_epoch=120, hidden=128,
                       module_optimizer="sgd", module_lr=0.1, ranking="margin")
  if arg == "smoke":
    c = smoke(c)
    c.al.subset_size = 32
  return c
