"""LL4AL: learning loss for active learning (Yoo & Kweon, CVPR 2019).

A loss-prediction module reads the model's intermediate features (one per
stage: `models.Functional.features`), global-average-pools each, maps it
through Linear(C_l, hidden) + ReLU, concatenates and predicts the
per-example loss with Linear(L * hidden, 1). Training (through
TrainExtension) minimises
    mean CE + weight * ranking_loss(predicted loss, CE per example)
where the ranking loss pairs row i with row B-1-i of the batch and asks the
predicted losses to be ordered like the true ones, by a margin (hinge, the
paper's loss) or a logistic loss (TA-VAAL's BCE variant). After epoch
`detach_epoch` the features reach the module through stop_gradient, so the
module no longer shapes the backbone. The query takes the highest predicted
loss; the paper scores a random subset of 10,000 unlabelled rows: set
`al.subset_size` (the loop's candidate subset).

Differences from the reference code (Mephisto405/Learning-Loss-for-Active-
Learning), each deliberate:
- The module has its own optimiser (`module_optimizer`, `module_lr`):
  default Adam 1e-3 (DAL+ also uses Adam for it), which trains the small
  module at any schedule; the reference shares the backbone's SGD 0.1 /
  momentum 0.9 / wd 5e-4 with LR milestones ('sgd' gives SGD without them).
- Pairs that include a wrap-around row of the last batch (weight 0) are
  dropped, so every pair is two distinct real rows.
- Ties (l_i == l_j) count as "j first" (target -1), as in the reference.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from al_jax import train
from al_jax.strategies.base import Strategy, TrainExtension, top_k

RANKING_LOSSES = ("margin", "bce")


def init_loss_net(key, feature_dims, hidden: int = 128):
  """Loss-module parameters with PyTorch's default Linear init U(+-1/sqrt(fan_in))."""
  u = lambda k, shape, fan: jax.random.uniform(k, shape, jnp.float32, -1.0, 1.0) / jnp.sqrt(fan)
  keys = jax.random.split(key, 2 * len(feature_dims) + 2)
  fc = [{"w": u(keys[2 * i], (c, hidden), c), "b": u(keys[2 * i + 1], (hidden,), c)}
        for i, c in enumerate(feature_dims)]
  n = hidden * len(feature_dims)
  return {"fc": fc, "out": {"w": u(keys[-2], (n, 1), n), "b": u(keys[-1], (1,), n)}}


def loss_net_apply(net, feats) -> jax.Array:
  """Predicted loss [B] from the list of features ([B, H, W, C] or [B, C])."""
  hs = []
  for layer, f in zip(net["fc"], feats, strict=True):
    f = f.astype(jnp.float32)
    if f.ndim > 2:  # global average pooling over the spatial axes
      f = f.mean(axis=tuple(range(1, f.ndim - 1)))
    hs.append(jax.nn.relu(f @ layer["w"] + layer["b"]))
  return (jnp.concatenate(hs, -1) @ net["out"]["w"] + net["out"]["b"])[:, 0]


def ranking_loss(pred: jax.Array, target: jax.Array, w: jax.Array, margin: float = 1.0,
                 kind: str = "margin") -> jax.Array:
  """Pairwise ranking loss of predicted vs true per-example losses.

  Pairs row i with row B-1-i (i < B // 2), as the reference. With
  s = +1 if l_i > l_j else -1 and d = pred_i - pred_j:
    margin: max(0, margin - s * d)           (Yoo & Kweon)
    bce:    BCE(sigmoid(d), [l_i > l_j])     (TA-VAAL)
  Averaged over pairs whose two rows both have w > 0. `target` gets no
  gradient.

  Args:
    pred: [B] predicted losses. target: [B] true losses. w: [B] row weights.
    margin: the hinge margin xi. kind: one of RANKING_LOSSES.
  """
  if kind not in RANKING_LOSSES:
    raise ValueError(f"Unknown ranking loss '{kind}'; known: {list(RANKING_LOSSES)}")
  h = pred.shape[0] // 2
  target = jax.lax.stop_gradient(target)
  d = pred[:h] - pred[::-1][:h]
  bigger = (target[:h] - target[::-1][:h]) > 0
  if kind == "margin":
    per = jax.nn.relu(margin - jnp.where(bigger, 1.0, -1.0) * d)
  else:  # -log sigmoid(d) if bigger else -log(1 - sigmoid(d))
    per = jnp.where(bigger, jax.nn.softplus(-d), jax.nn.softplus(d))
  return train.weighted_mean(per, ((w[:h] > 0) & (w[::-1][:h] > 0)).astype(per.dtype))


def make_module_optimizer(name: str, lr: float, schedule=None) -> optax.GradientTransformation:
  """The loss module's optimiser: 'adam', or 'sgd' (momentum 0.9, wd 5e-4: the paper).

  `schedule`: a learning-rate schedule as config.train.schedule (al_jax/schedules.py),
  over the same steps and epochs as the model's; None keeps the rate constant.
  """
  return train.make_optimizer(ml_collections.ConfigDict(dict(
      optimizer=name, learning_rate=lr, momentum=0.9,
      weight_decay=5e-4 if name == "sgd" else 0.0, schedule=schedule)))


def loss_module_extension(fns, *, weight: float, margin: float, detach_epoch: int,
                          hidden: int, module_optimizer: str, module_lr: float,
                          ranking: str = "margin", module_schedule=None) -> TrainExtension:
  """The TrainExtension that trains the loss module with the model (LL4AL, TA-VAAL)."""
  if fns.features_train is None:
    raise ValueError("LL4AL needs a model with a `features` method (models.Functional."
                     "features_train is None)")
  for name, v in (("weight", weight), ("margin", margin), ("module_lr", module_lr)):
    if v < 0:
      raise ValueError(f"loss module {name} must be >= 0, got {v}")
  if hidden < 1:
    raise ValueError(f"loss module hidden must be >= 1, got {hidden}")
  if ranking not in RANKING_LOSSES:
    raise ValueError(f"Unknown ranking loss '{ranking}'; known: {list(RANKING_LOSSES)}")
  tx = make_module_optimizer(module_optimizer, module_lr, module_schedule)

  def init(key, params, rest, num_rows):
    del params, rest, num_rows
    return {"params": init_loss_net(key, fns.feature_dims, hidden)}

  def loss(params, rest, ext, batch, key, epoch):
    (logits, out), new_rest = fns.features_train(params, rest, batch["x"], key)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), batch["y"])
    # Past detach_epoch the module learns on frozen features: no gradient
    # from it reaches the backbone (`where` passes gradient only to the
    # branch it picks).
    frozen = epoch > detach_epoch
    feats = [jnp.where(frozen, jax.lax.stop_gradient(f), f) for f in out["stages"]]
    pred = loss_net_apply(ext["params"], feats)
    rank = ranking_loss(pred, nll, batch["w"], margin, ranking)
    return train.weighted_mean(nll, batch["w"]) + weight * rank, (new_rest, logits)

  return TrainExtension(init=init, loss=loss, tx=tx)


def predicted_loss(fns, params, rest, x, ext) -> jax.Array:
  """The module's predicted loss [B] in eval mode."""
  return loss_net_apply(ext["params"], fns.features(params, rest, x)[1]["stages"])


def ll4al(fns, *, weight: float = 1.0, margin: float = 1.0, detach_epoch: int = 120,
          hidden: int = 128, module_optimizer: str = "adam", module_lr: float = 1e-3,
          ranking: str = "margin", module_schedule=None) -> Strategy:
  """LL4AL strategy with its training extension.

  Args:
    fns: the model's `models.Functional` (needs `features`).
    weight: lambda, the ranking loss weight (paper: 1).
    margin: xi, the hinge margin (paper: 1).
    detach_epoch: from the epoch after this one (0-based) the module's
      gradient no longer reaches the backbone (paper: 120 of 200 epochs).
    hidden: width of each per-stage FC layer (paper: 128).
    module_optimizer: 'adam' or 'sgd' for the module. module_lr: its lr.
    ranking: 'margin' (paper) or 'bce' (TA-VAAL's variant).
    module_schedule: the module's learning-rate schedule, a dict as
      config.train.schedule (e.g. the paper's milestone at epoch 160:
      {"name": "multistep", "milestones": (160,), "factor": 0.1}); None: constant.
  """
  extension = loss_module_extension(
      fns, weight=weight, margin=margin, detach_epoch=detach_epoch, hidden=hidden,
      module_optimizer=module_optimizer, module_lr=module_lr, ranking=ranking,
      module_schedule=module_schedule)

  def score(params, rest, batch, key, ext=None):
    del key
    return predicted_loss(fns, params, rest, batch["x"], ext)

  return Strategy(score, top_k(), extension=extension)
