"""TracIn-style influence on the labelled set (Pruthi et al., NeurIPS 2020),
one checkpoint, from seeded full-network gradient projections.

TracIn estimates the influence of training on z on the loss at z' by
eta <grad L(z), grad L(z')> summed over checkpoints; it is ISAL's influence
with the inverse Hessian replaced by the identity. As an AL score for an
unlabelled row u (pseudo-label yhat = argmax p, as GraNd / BADGE / ISAL do):

  score(u) = <P g_u, mean_{j in L} P g_j>,   g = grad_theta CE(x, yhat),

where P is per_example.grad_projections' fixed k-dimensional sketch (so
<P g_u, P g_j> estimates <g_u, g_j> without bias). A large score means a
gradient step on u lowers the loss of the labelled rows the most (a
"proponent"); the top-k are queried. The labelled rows' gradients use the
model's own predictions too: the score pass never sees labels. Only the
current model is used (one checkpoint, eta = 1; the ranking is unchanged by
eta).
"""

import jax.numpy as jnp

from al_jax import per_example
from al_jax.strategies.base import Strategy, top_k


def tracin(fns, *, k: int = 512, seed: int = 0) -> Strategy:
  """TracIn-style score, top-k.

  Args:
    fns: the model's `models.Functional`.
    k: sketch dimension of the gradient projections.
    seed: the sketch's seed (fixed: every round uses the same projection).
  """
  if k < 1:
    raise ValueError(f"tracin k must be >= 1, got {k}")

  def score(params, rest, batch, key, ext=None):
    del key, ext
    x = batch["x"]
    # y=None: yhat from the taps' own forward pass.
    return per_example.grad_projections(fns, params, rest, x, None, k=k, seed=seed)

  def mean_labelled_dot(emb, pool, key, ext):
    del key, ext
    w = pool.labelled.astype(emb.dtype)
    mean_l = (w @ emb) / jnp.maximum(jnp.sum(w), 1.0)
    return emb @ mean_l

  return Strategy(score, top_k(mean_labelled_dot))
