"""Data-diet scores (Paul, Ganguli & Dziugaite, NeurIPS 2021): GraNd and EL2N.

  GraNd(x, y) = E_theta ||grad_theta CE(f(x; theta), y)||_2   (all parameters)
  EL2N(x, y)  = E_theta ||softmax(f(x; theta)) - onehot(y)||_2
where the expectation is over independent initialisations (the paper scores
at init or after a few epochs and averages over seeds; mansheej/data_diet
recommends >= 10 runs).

As active-learning scores the labels are unknown: y = yhat, the prediction of
the current trained model (a design choice; none of the reference repos does
AL with them). `at` picks the weights the scores are taken at:
  "trained": the current model (num_inits must be 1);
  "init":    `num_inits` fresh initialisations (fold_in(score key, s)),
             averaged; yhat still comes from the trained model.
Higher = query first. For data *pruning* (true labels, early-training
checkpoints over several seeds, drop the lowest scores) see al_jax/prune.py.

EL2N with yhat = argmax p is ||p - e_argmax p||, an uncertainty score.
"""

import jax
import jax.numpy as jnp

from al_jax import per_example
from al_jax.strategies.base import Strategy, top_k

AT = ("trained", "init")


def el2n_scores(fns, params, rest, x, y) -> jax.Array:
  """[B] ||softmax(f(x)) - onehot(y)||_2 (eval mode)."""
  p = jax.nn.softmax(fns.apply(params, rest, x)[0].astype(jnp.float32))
  return jnp.linalg.norm(p - jax.nn.one_hot(y, p.shape[-1], dtype=p.dtype), axis=-1)


def grand_scores(fns, params, rest, x, y, microbatch_size: int = 16,
                 path: str = "taps") -> jax.Array:
  """[B] ||grad_theta CE(f(x), y)||_2 over all parameters: by layer taps
  (path="taps", one forward + one backward pass; y=None: the predicted
  labels of that forward pass) or vmap(grad) ("vmap")."""
  if path == "taps":
    return per_example.tap_grad_norms(fns, params, rest, x, y)
  return per_example.grad_norms(fns, params, rest, x, y, microbatch_size)


def averaged(score_fn, fns, params, rest, x, y, key, at: str, num_inits: int) -> jax.Array:
  """score_fn(params, rest, x, y) at the trained weights, or its mean over
  `num_inits` initialisations drawn from `key`."""
  if at == "trained":
    return score_fn(params, rest, x, y)
  total = 0.0
  for s in range(num_inits):  # static and small: unrolled
    p0, r0 = fns.init(jax.random.fold_in(key, s))
    total = total + score_fn(p0, r0, x, y)
  return total / num_inits


def _check(name, at, num_inits):
  if at not in AT:
    raise ValueError(f"{name} at must be one of {list(AT)}, got {at!r}")
  if num_inits < 1:
    raise ValueError(f"{name} num_inits must be >= 1, got {num_inits}")
  if at == "trained" and num_inits != 1:
    raise ValueError(f"{name} at='trained' scores the one current model; "
                     f"num_inits must be 1, got {num_inits}")


def _strategy(fns, score_fn, at, num_inits, own_labels: bool = False) -> Strategy:
  """own_labels: score_fn(params, rest, x, None) takes the predicted labels
  from its own forward pass (the taps), so the trained model's scores need
  no separate forward pass for yhat."""
  def score(params, rest, batch, key, ext=None):
    del ext
    x = batch["x"]
    if own_labels and at == "trained":
      return score_fn(params, rest, x, None)
    yhat = jnp.argmax(fns.apply(params, rest, x)[0], -1)
    return averaged(score_fn, fns, params, rest, x, yhat, key, at, num_inits)

  return Strategy(score, top_k())


def grand(fns, *, at: str = "trained", num_inits: int = 1,
          microbatch_size: int = 16, path: str = "taps") -> Strategy:
  """GraNd with predicted labels, top-k.

  Args:
    fns: the model's `models.Functional`.
    at: "trained" (current model) or "init" (fresh initialisations).
    num_inits: initialisations averaged when at="init".
    microbatch_size: examples per vmap(grad) microbatch (path="vmap").
    path: "taps" (layer taps, the default) or "vmap" (vmap(grad), the
      reference); the scores agree to float error.
  """
  _check("grand", at, num_inits)
  if microbatch_size < 1:
    raise ValueError(f"grand microbatch_size must be >= 1, got {microbatch_size}")
  if path not in per_example.PATHS:
    raise ValueError(f"grand path must be one of {list(per_example.PATHS)}, got {path!r}")
  return _strategy(
      fns, lambda p, r, x, y: grand_scores(fns, p, r, x, y, microbatch_size, path),
      at, num_inits, own_labels=path == "taps")


def el2n(fns, *, at: str = "trained", num_inits: int = 1) -> Strategy:
  """EL2N with predicted labels, top-k (arguments as `grand`)."""
  _check("el2n", at, num_inits)
  return _strategy(fns, lambda p, r, x, y: el2n_scores(fns, p, r, x, y), at, num_inits)
