"""The MNIST-10k protocol: any strategy on the built-in MNIST t10k images.

  python -m al_jax.main --config configs/mnist10k.py:badge --workdir /tmp/al_badge_mnist10k
  python benchmarks/accuracy.py --config configs/mnist10k.py:table \
      --strategies least_confidence,entropy,margin,bayesian_lc,bayesian_entropy,bald,\
variation_ratios,batchbald,coreset,badge,mean_std --seeds 10 \
      --out benchmarks/results/table_mnist10k_s10

The argument is 'NAME[,table][,smoke]' (default entropy). The 10,000 t10k
images (data.name 'mnist10k', shipped in al_jax/datasets_data) split into an
8,000-image pool and 2,000 test images; 20 balanced initial labels + 20
rounds of 20, at least 300 steps of batch 64 per round, the Gal et al.
(2017) CNN. `table`: the model of the MNIST-10k table instead, an MLP (one
hidden layer of 256, dropout 0.5) for every strategy: the CNN costs ~50
minutes per run on the 2-core CPU that table is measured on, the MLP about
a minute. Each strategy's departures from its factory defaults are in
TUNED (al.subset_size: the query scores that many random unlabelled rows).
"""

from configs.common import base_config, finish, merge, mnist10k, parse
from al_jax.strategies import STRATEGIES

VARIANTS = ("table",)

_SUBSET = {"al.subset_size": 2000}
# Per-row gradients or DeepFool cost C backward passes per pool row; the smoke
# pool is scored whole.
_COSTLY = merge(_SUBSET, {"smoke": {"al.subset_size": 0}})
# Conv VAE (32, 64), 2,000 iterations per round over the whole pool.
_CONV_VAE = {"kw": dict(channels=(32, 64), num_steps=2000)}
TUNED = {
    "core_gcn": _SUBSET,  # the GCN's dense adjacency stays small on a CPU
    "uncertain_gcn": _SUBSET,
    "dfal": _COSTLY,
    "egl": _COSTLY,
    "grand": _COSTLY,
    # The loss module reads conv1, conv2 and the dense layer.
    "ll4al": merge(_SUBSET, {"kw": dict(detach_epoch=30)}),
    "vaal": _CONV_VAE,
    "sraal": _CONV_VAE,
    "ta_vaal": merge(_CONV_VAE, {"kw": dict(detach_epoch=30)}),
    "isal": {"al.validation_size": 5},  # v of s_test from held-out initial labels
}


def get_config(arg: str | None = None):
  name, flags = parse(arg, STRATEGIES, "entropy", VARIANTS)
  protocol = {"al.query_size": 20, "al.num_rounds": 20, "train.batch_size": 64,
              "train.num_epochs": 50, "train.min_steps": 300}
  if "table" in flags:
    protocol.update(model_name="mlp", model=dict(hidden=(256,), dropout=0.5))
  return finish(mnist10k(base_config()), name, merge(protocol, TUNED.get(name, {})), flags)
