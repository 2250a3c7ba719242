"""WAAL: Wasserstein adversarial active learning (Shui et al., AISTATS 2020).

Training (through TrainExtension) adds a critic D: features -> (0, 1)
(Linear(d, hidden) - ReLU - Linear(hidden, 1) - sigmoid) over the model's
penultimate features h (dropout `critic_dropout` on its hidden layer while
training, as the reference's F.dropout), and alternates, every step:
  model:  CE(labelled) + alpha * W,   W = mean D(h_U) - gamma * mean D(h_L)
  critic: minimise  -W + gp_weight * GP,
          GP = mean (||grad D(p)|| - 1)^2 over p in {interpolates, h_U, h_L}
so the features make labelled and unlabelled rows hard to tell apart while
the critic estimates their Wasserstein distance. The query ranks rows by
  0.5 ||log p||_2 + 0.5 ||-log p||_1 - selection * D(h)   (smallest first):
uncertain rows (near-uniform p makes the sums smallest) that the critic
finds unlabelled-like (high D).

Differences from the reference code (cjshui/WAAL `wasserstein_adversarial.py`),
each deliberate:
- Critic sign: the reference minimises -alpha W - alpha 2 GP, i.e. it
  *rewards* a large gradient norm (the sign looks inverted relative to
  WGAN-GP, -W + lambda GP); we use the WGAN-GP sign.
- The critic uses Adam (lr `critic_lr`) on the unscaled objective; the
  reference scales it by alpha (2e-3) under SGD, which makes the critic
  barely move. alpha still weights W in the model's loss.
- The model-side GP term of the reference is computed on detached features
  with a frozen critic, so it has no gradient: we leave it out.
- gamma is a constant (default 1, as in DAL+); the reference uses |L|/|U|.
- As the reference (and unlike our first version): an epoch runs over the
  longer of the labelled and unlabelled sets, cycling the labelled rows
  (`long_epoch`, the reference's zipped loaders, dataset_WA.py:89-93), and
  the critic has dropout 0.5 while training (model.py:158).
- The model's own head is the classifier (the reference adds 512-50-10).
- One train-mode forward pass per set and step: the model's loss reads
  the features (out["pre_logits"]) of the pass that gives the
  cross-entropy logits, plus one pass over the unlabelled batch (as the
  reference runs its feature net on both), and the critic's own step (after
  the model update) reuses them, detached, through the loss's aux. The
  reference recomputes them after the update (in training mode too, under
  no_grad): ours are one model step older and cost no extra passes. The
  query uses eval-mode features.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from al_jax import models, train
from al_jax.models.layers import torch_linear
from al_jax.strategies.base import Strategy, TrainExtension, top_k


class Critic(nnx.Module):
  """D: Linear(d, hidden) - ReLU - Dropout - Linear(hidden, 1) - sigmoid, in (0, 1).

  PyTorch's default Linear init (the reference's); the dropout is on in
  training mode only (the reference's F.dropout while training).
  """

  def __init__(self, dim: int, hidden: int = 50, dropout: float = 0.0, *, rngs: nnx.Rngs):
    self.hidden = torch_linear(dim, hidden, rngs=rngs)
    self.drop = nnx.Dropout(dropout)
    self.out = torch_linear(hidden, 1, rngs=rngs)

  def __call__(self, h: jax.Array, *, rngs=None) -> jax.Array:
    """D(h) [B]; `rngs`: the dropout key (training mode)."""
    z = self.drop(jax.nn.relu(self.hidden(h)), rngs=rngs)
    return jax.nn.sigmoid(self.out(z))[:, 0]


def critic(dim: int, hidden: int = 50, dropout: float = 0.0) -> models.Pure:
  """The critic's pure views (params only: it has no other state)."""
  return models.pure(lambda rngs: Critic(dim, hidden, dropout, rngs=rngs))


def critic_fn(net: models.Pure, c) -> Callable:
  """d(h, key=None) -> D(h) [B] with params c; with a key, in training mode
  (the dropout mask drawn from that key)."""
  def d(h, key=None):
    if key is None:
      return net.apply(c, {}, h)
    return net.apply_train(c, {}, h, rngs=key)[0]
  return d


def gradient_penalty(d: Callable, h_u: jax.Array, h_l: jax.Array, key,
                     train: bool = False) -> jax.Array:
  """mean (||grad_p D(p)|| - 1)^2 over interpolates of (h_u, h_l), h_u and h_l.

  d: as `critic_fn`. With train=True each point's critic has its own dropout
  mask (the reference evaluates the penalty with the critic in training mode).
  """
  k_a, k_drop = jax.random.split(key)
  a = jax.random.uniform(k_a, (h_u.shape[0], 1), h_u.dtype)
  pts = jnp.concatenate([h_u + a * (h_l - h_u), h_u, h_l])
  keys = jax.random.split(k_drop, pts.shape[0])
  grads = jax.vmap(jax.grad(lambda p, k: d(p[None], k if train else None)[0]))(pts, keys)
  # A safe norm: the gradient of ||g|| at g = 0 (all critic ReLUs off, or
  # all-zero features) is NaN and would poison the critic.
  norm = jnp.sqrt(jnp.sum(grads * grads, axis=-1) + 1e-12)
  return jnp.mean((norm - 1.0) ** 2)


def wasserstein(d: Callable, h_u, h_l, w_l, gamma: float, key=None) -> jax.Array:
  """mean D(h_u) - gamma * weighted mean D(h_l) (w_l = 0 on wrap-around rows).

  d: as `critic_fn`. With a key, the critic runs in training mode
  (independent dropout masks per set).
  """
  k_u, k_l = jax.random.split(key) if key is not None else (None, None)
  return jnp.mean(d(h_u, k_u)) - gamma * train.weighted_mean(d(h_l, k_l), w_l)


def uncertainty(logp: jax.Array) -> jax.Array:
  """0.5 ||log p||_2 + 0.5 ||-log p||_1 (smallest = most uncertain)."""
  return 0.5 * jnp.linalg.norm(logp, axis=-1) + 0.5 * jnp.sum(-logp, axis=-1)


def waal(fns, *, alpha: float = 2e-3, gamma: float = 1.0, gp_weight: float = 2.0,
         selection: float = 10.0, critic_hidden: int = 50, critic_lr: float = 1e-3,
         critic_schedule=None, critic_dropout: float = 0.5,
         long_epoch: bool = True) -> Strategy:
  """WAAL strategy with its training extension.

  Args:
    fns: the model's `models.Functional`.
    alpha: weight of W in the model's loss (reference 2e-3; DAL+ 1e-3).
    gamma: weight of the labelled term in W (DAL+: 1).
    gp_weight: gradient-penalty weight in the critic loss (reference: 2).
    selection: weight of the critic score in the query (reference: 10).
    critic_hidden: critic hidden width (reference: 50).
    critic_lr: critic Adam learning rate.
    critic_schedule: its schedule, a dict as config.train.schedule
      (al_jax/schedules.py), over the model's steps and epochs; None: constant.
    critic_dropout: dropout on the critic's hidden layer while training
      (reference: 0.5, model.py:158); the query uses the critic without it.
    long_epoch: an epoch over the longer of the labelled and unlabelled sets
      (reference); False: over the labelled set only.
  """
  if not 0.0 <= critic_dropout < 1.0:
    raise ValueError(f"waal critic_dropout must be in [0, 1), got {critic_dropout}")
  for name, v in (("alpha", alpha), ("gp_weight", gp_weight), ("critic_lr", critic_lr)):
    if v < 0:
      raise ValueError(f"waal {name} must be >= 0, got {v}")
  critic_tx = train.make_optimizer(ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=critic_lr, schedule=critic_schedule)))

  net = critic(fns.embed_dim, critic_hidden, critic_dropout)

  def init(key, params, rest, x):
    del params, rest, x
    c, _ = net.init(key)
    return {"critic": c, "critic_opt": critic_tx.init(c),
            "w_dist": jnp.zeros((), jnp.float32), "gp": jnp.zeros((), jnp.float32)}

  def loss(params, rest, ext, batch, key, epoch):
    del epoch
    (logits, out_l), new_rest = fns.apply_train(params, rest, batch["x"], key)
    (_, out_u), new_rest = fns.apply_train(params, new_rest, batch["x_u"],
                                           jax.random.fold_in(key, 2))
    ce = train.weighted_mean(
        optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]), batch["w"])
    h_l, h_u = out_l["pre_logits"], out_u["pre_logits"]
    # A key of its own: the model's dropout key stays that of plain training.
    w_dist = wasserstein(critic_fn(net, ext["critic"]), h_u, h_l, batch["w"], gamma,
                         jax.random.fold_in(key, 1))
    # The critic's step (after_step) reuses these train-mode features.
    side = {"h_l": jax.lax.stop_gradient(h_l), "h_u": jax.lax.stop_gradient(h_u)}
    return ce + alpha * w_dist, (new_rest, logits, side)

  def after_step(params, rest, ext, batch, key, epoch):
    del params, rest, epoch
    h_l, h_u = batch["h_l"], batch["h_u"]

    def critic_loss(c):
      k_w, k_gp = jax.random.split(key)
      d = critic_fn(net, c)
      w_dist = wasserstein(d, h_u, h_l, batch["w"], gamma, k_w)
      gp = gradient_penalty(d, h_u, h_l, k_gp, train=True)
      return -w_dist + gp_weight * gp, (w_dist, gp)

    (_, (w_dist, gp)), g = jax.value_and_grad(critic_loss, has_aux=True)(ext["critic"])
    updates, opt = critic_tx.update(g, ext["critic_opt"], ext["critic"])
    return {**ext, "critic": optax.apply_updates(ext["critic"], updates), "critic_opt": opt,
            "w_dist": w_dist, "gp": gp}

  extension = TrainExtension(init=init, loss=loss, after_step=after_step,
                             needs_unlabelled=True, long_epoch=bool(long_epoch))

  def score(params, rest, batch, key, ext=None):
    del key
    logits, out = fns.apply(params, rest, batch["x"])
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    d = critic_fn(net, ext["critic"])(out["pre_logits"].astype(jnp.float32))
    # The reference queries the smallest total; higher = query first here.
    return -(uncertainty(logp) - selection * d)

  return Strategy(score, top_k(), extension=extension)
