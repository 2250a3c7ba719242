"""LL4AL: learning loss for active learning (Yoo & Kweon, CVPR 2019).

A loss-prediction module reads the model's intermediate features (one per
stage: out["stages"] of the model's forward pass), global-average-pools each, maps it
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

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from al_jax import models, train
from al_jax.models.layers import torch_linear
from al_jax.strategies.base import Strategy, TrainExtension, top_k

RANKING_LOSSES = ("margin", "bce")


class LossNet(nnx.Module):
  """The loss-prediction module: per stage GAP -> Linear(C_l, hidden) -> ReLU,
  concatenated -> Linear(L * hidden, 1). PyTorch's default Linear init."""

  def __init__(self, stage_dims, hidden: int = 128, *, rngs: nnx.Rngs):
    self.fc = nnx.List([torch_linear(c, hidden, rngs=rngs) for c in stage_dims])
    self.out = torch_linear(hidden * len(stage_dims), 1, rngs=rngs)

  def __call__(self, feats) -> jax.Array:
    """Predicted loss [B] from the list of features ([B, H, W, C] or [B, C])."""
    hs = []
    for layer, f in zip(self.fc, feats, strict=True):
      f = f.astype(jnp.float32)
      if f.ndim > 2:  # global average pooling over the spatial axes
        f = f.mean(axis=tuple(range(1, f.ndim - 1)))
      hs.append(jax.nn.relu(layer(f)))
    return self.out(jnp.concatenate(hs, -1))[:, 0]


@functools.lru_cache
def loss_net(stage_dims: tuple[int, ...], hidden: int = 128) -> models.Pure:
  """The loss module's pure views (params only: it has no other state)."""
  return models.pure(lambda rngs: LossNet(stage_dims, hidden, rngs=rngs))


def predict(net_params, feats, hidden: int = 128) -> jax.Array:
  """The loss module's predicted loss [B] from the stage features."""
  return loss_net(tuple(int(f.shape[-1]) for f in feats), hidden).apply(net_params, {}, feats)


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
  for name, v in (("weight", weight), ("margin", margin), ("module_lr", module_lr)):
    if v < 0:
      raise ValueError(f"loss module {name} must be >= 0, got {v}")
  if hidden < 1:
    raise ValueError(f"loss module hidden must be >= 1, got {hidden}")
  if ranking not in RANKING_LOSSES:
    raise ValueError(f"Unknown ranking loss '{ranking}'; known: {list(RANKING_LOSSES)}")
  tx = make_module_optimizer(module_optimizer, module_lr, module_schedule)

  def init(key, params, rest, x):
    # The module's input widths: the stages of one input of the pool's shape.
    one = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), jnp.float32)
    stages = jax.eval_shape(fns.apply, params, rest, one)[1]["stages"]
    dims = tuple(int(f.shape[-1]) for f in stages)
    if not dims:
      raise ValueError("LL4AL needs a model whose out['stages'] is not empty")
    return {"params": loss_net(dims, hidden).init(key)[0]}

  def loss(params, rest, ext, batch, key, epoch):
    (logits, out), new_rest = fns.apply_train(params, rest, batch["x"], key)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), batch["y"])
    # Past detach_epoch the module learns on frozen features: no gradient
    # from it reaches the backbone (`where` passes gradient only to the
    # branch it picks).
    frozen = epoch > detach_epoch
    feats = [jnp.where(frozen, jax.lax.stop_gradient(f), f) for f in out["stages"]]
    pred = predict(ext["params"], feats, hidden)
    rank = ranking_loss(pred, nll, batch["w"], margin, ranking)
    return train.weighted_mean(nll, batch["w"]) + weight * rank, (new_rest, logits)

  return TrainExtension(init=init, loss=loss, tx=tx)


def predicted_loss(fns, params, rest, x, ext, hidden: int = 128) -> jax.Array:
  """The module's predicted loss [B] in eval mode (hidden: its width)."""
  return predict(ext["params"], fns.apply(params, rest, x)[1]["stages"], hidden)


def ll4al(fns, *, weight: float = 1.0, margin: float = 1.0, detach_epoch: int = 120,
          hidden: int = 128, module_optimizer: str = "adam", module_lr: float = 1e-3,
          ranking: str = "margin", module_schedule=None) -> Strategy:
  """LL4AL strategy with its training extension.

  Args:
    fns: the model's `models.Functional` (its out["stages"] must not be empty).
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
    return predicted_loss(fns, params, rest, batch["x"], ext, hidden)

  return Strategy(score, top_k(), extension=extension)
