"""WAAL: Wasserstein adversarial active learning (Shui et al., AISTATS 2020).

Training (through train.TrainExtension) adds a critic D: features -> (0, 1)
(Linear(d, hidden) - ReLU - Linear(hidden, 1) - sigmoid) over the model's
penultimate features h, and alternates, every step:
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
- The model's own head is the classifier (the reference adds 512-50-10).
- The features fed to the critic come from `fns.embed` (eval mode: dropout
  off, BatchNorm on running statistics freshly updated by this step), the
  same features the query scores; the cross-entropy uses train mode. The
  models expose no train-mode embedding, and this keeps train and query
  features consistent.
"""

import jax
import jax.numpy as jnp
import optax

from al_jax import selection as sel_lib
from al_jax import train
from al_jax.strategies.base import Strategy


def init_critic(key, dim: int, hidden: int = 50):
  """Critic parameters with PyTorch's default Linear init U(+-1/sqrt(fan_in))."""
  ks = jax.random.split(key, 4)
  u = lambda k, shape, fan: jax.random.uniform(k, shape, jnp.float32, -1.0, 1.0) / jnp.sqrt(fan)
  return {"w1": u(ks[0], (dim, hidden), dim), "b1": u(ks[1], (hidden,), dim),
          "w2": u(ks[2], (hidden, 1), hidden), "b2": u(ks[3], (1,), hidden)}


def critic_apply(c, h: jax.Array) -> jax.Array:
  """D(h) in (0, 1), shape [B]."""
  z = jax.nn.relu(h @ c["w1"] + c["b1"])
  return jax.nn.sigmoid(z @ c["w2"] + c["b2"])[:, 0]


def gradient_penalty(c, h_u: jax.Array, h_l: jax.Array, key) -> jax.Array:
  """mean (||grad_p D(p)|| - 1)^2 over interpolates of (h_u, h_l), h_u and h_l."""
  a = jax.random.uniform(key, (h_u.shape[0], 1), h_u.dtype)
  pts = jnp.concatenate([h_u + a * (h_l - h_u), h_u, h_l])
  grads = jax.vmap(jax.grad(lambda p: critic_apply(c, p[None])[0]))(pts)
  # A safe norm: the gradient of ||g|| at g = 0 (all critic ReLUs off, or
  # all-zero features) is NaN and would poison the critic.
  norm = jnp.sqrt(jnp.sum(grads * grads, axis=-1) + 1e-12)
  return jnp.mean((norm - 1.0) ** 2)


def wasserstein(c, h_u, h_l, w_l, gamma: float) -> jax.Array:
  """mean D(h_u) - gamma * weighted mean D(h_l) (w_l = 0 on wrap-around rows)."""
  return jnp.mean(critic_apply(c, h_u)) - gamma * train.weighted_mean(critic_apply(c, h_l), w_l)


def uncertainty(logp: jax.Array) -> jax.Array:
  """0.5 ||log p||_2 + 0.5 ||-log p||_1 (smallest = most uncertain)."""
  return 0.5 * jnp.linalg.norm(logp, axis=-1) + 0.5 * jnp.sum(-logp, axis=-1)


def waal(fns, *, alpha: float = 2e-3, gamma: float = 1.0, gp_weight: float = 2.0,
         selection: float = 10.0, critic_hidden: int = 50, critic_lr: float = 1e-3) -> Strategy:
  """WAAL strategy with its training extension.

  Args:
    fns: the model's `models.Functional`.
    alpha: weight of W in the model's loss (reference 2e-3; DAL+ 1e-3).
    gamma: weight of the labelled term in W (DAL+: 1).
    gp_weight: gradient-penalty weight in the critic loss (reference: 2).
    selection: weight of the critic score in the query (reference: 10).
    critic_hidden: critic hidden width (reference: 50).
    critic_lr: critic Adam learning rate.
  """
  for name, v in (("alpha", alpha), ("gp_weight", gp_weight), ("critic_lr", critic_lr)):
    if v < 0:
      raise ValueError(f"waal {name} must be >= 0, got {v}")
  critic_tx = optax.adam(critic_lr)

  def init(key, params, rest, num_rows):
    del params, rest, num_rows
    c = init_critic(key, fns.embed_dim, critic_hidden)
    return {"critic": c, "critic_opt": critic_tx.init(c),
            "w_dist": jnp.zeros((), jnp.float32), "gp": jnp.zeros((), jnp.float32)}

  def loss(params, rest, ext, batch, key, epoch):
    del epoch
    logits, new_rest = fns.apply_train(params, rest, batch["x"], key)
    ce = train.weighted_mean(
        optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]), batch["w"])
    h_l = fns.embed(params, new_rest, batch["x"])
    h_u = fns.embed(params, new_rest, batch["x_u"])
    w_dist = wasserstein(ext["critic"], h_u, h_l, batch["w"], gamma)
    return ce + alpha * w_dist, (new_rest, logits)

  def after_step(params, rest, ext, batch, key, epoch):
    del epoch
    h_l = jax.lax.stop_gradient(fns.embed(params, rest, batch["x"]))
    h_u = jax.lax.stop_gradient(fns.embed(params, rest, batch["x_u"]))

    def critic_loss(c):
      w_dist = wasserstein(c, h_u, h_l, batch["w"], gamma)
      gp = gradient_penalty(c, h_u, h_l, key)
      return -w_dist + gp_weight * gp, (w_dist, gp)

    (_, (w_dist, gp)), g = jax.value_and_grad(critic_loss, has_aux=True)(ext["critic"])
    updates, opt = critic_tx.update(g, ext["critic_opt"], ext["critic"])
    return {**ext, "critic": optax.apply_updates(ext["critic"], updates), "critic_opt": opt,
            "w_dist": w_dist, "gp": gp}

  extension = train.TrainExtension(init=init, loss=loss, after_step=after_step,
                                   needs_unlabelled=True)

  def score(params, rest, batch, key, ext):
    del key
    h = fns.embed(params, rest, batch["x"])
    logp = jax.nn.log_softmax(fns.head(params, rest, h).astype(jnp.float32))
    d = critic_apply(ext["critic"], h.astype(jnp.float32))
    # The reference queries the smallest total; higher = query first here.
    return -(uncertainty(logp) - selection * d)

  def select(scores, pool, budget, key, ext):
    del key, ext
    return sel_lib.masked_top_k(scores, pool, budget)

  return Strategy(score, select, extension=extension)
