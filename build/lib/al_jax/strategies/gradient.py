"""Gradient-based strategies: EGL and BADGE.

EGL (expected gradient length; Settles, Craven & Ray 2008; Huang et al. 2016):
  score(x) = sum_c p(c|x) ||grad_theta CE(x, c)||_2
over ALL parameters (vmap over examples and classes, microbatched), or over
the last layer alone in closed form (`last_layer=True`). The L2 norm: the
small-text implementation sums |g| (an L1 norm) by mistake.

BADGE (Ash et al., ICLR 2020): the hallucinated last-layer gradient
g_x = (p - e_yhat) (x) h(x), yhat = argmax p, h = penultimate features, then
k-means++ seeding over the unlabelled rows: the first centre has the largest
||g||, each next one is drawn with probability proportional to D^2, D = the
distance to the nearest chosen centre. No Lloyd steps, the labelled set is
ignored, as in JordanAsh/badge `init_centers`.

Distances are never computed on the C*d-dimensional g: with q = p - e_yhat,
  ||g_i - g_j||^2 = ||q_i||^2 ||h_i||^2 + ||q_j||^2 ||h_j||^2
                    - 2 (q_i . q_j)(h_i . h_j),
so memory is O(N (d + C)) and each pick costs two matrix-vector products.
The D^2 loop is a lax.fori_loop over one [N] min-distance vector sharded with
the pool rows; D^2 sampling is Gumbel-max (argmax of log D^2 + Gumbel noise,
an exact categorical draw that needs no global cumsum). A chosen row leaves
the candidates, so ids are unique even when all remaining D are 0 (then the
draw is uniform among the remaining rows; the DAL+ copy hangs in pdb there).
"""

import jax
import jax.numpy as jnp

from al_jax import per_example, selection
from al_jax.kcenter import row
from al_jax.strategies.base import Strategy


def egl_scores(fns, params, rest, x, *, last_layer: bool = False, bias: bool = True,
               microbatch_size: int = 16) -> jax.Array:
  """[B] expected gradient length sum_c p_c ||grad CE(x, c)||_2."""
  if last_layer:
    h, p = per_example.last_layer_inputs(fns, params, rest, x)
    norms = per_example.last_layer_class_grad_norms(h, p, bias)
  else:
    p = jax.nn.softmax(fns.apply(params, rest, x).astype(jnp.float32))
    norms = per_example.class_grad_norms(fns, params, rest, x, microbatch_size)
  return jnp.sum(p * norms, axis=-1)


def egl(fns, *, last_layer: bool = False, bias: bool = True,
        microbatch_size: int = 16) -> Strategy:
  """Expected gradient length, top-k.

  Args:
    fns: the model's `models.Functional`.
    last_layer: closed form over the head (W, b) only, instead of all
      parameters.
    bias: with last_layer, include the head bias gradient.
    microbatch_size: examples per vmap(grad) microbatch (full network); the
      peak memory is about microbatch_size x num_classes gradients.
  """
  if microbatch_size < 1:
    raise ValueError(f"egl microbatch_size must be >= 1, got {microbatch_size}")

  def score(params, rest, batch, key):
    del key
    return egl_scores(fns, params, rest, batch["x"], last_layer=last_layer, bias=bias,
                      microbatch_size=microbatch_size)

  def select(scores, pool, budget, key):
    del key
    return selection.masked_top_k(scores, pool, budget)

  return Strategy(score, select)


def badge_factors(fns, params, rest, x, bias: bool = False):
  """{"h": [B, d], "q": [B, C]}: the gradient embedding g = q (x) h in factors.

  q = p - e_yhat is the gradient of CE(x, yhat) w.r.t. the logits (the
  reference uses e_yhat - p; the sign changes no distance). bias=True appends
  1 to h, adding the head bias gradient q to g (the reference leaves it out).
  """
  h, p = per_example.last_layer_inputs(fns, params, rest, x)
  q = p - jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype)
  if bias:
    h = jnp.concatenate([h, jnp.ones_like(h[:, :1])], axis=-1)
  return {"h": h, "q": q}


def sq_norms(h: jax.Array, q: jax.Array) -> jax.Array:
  """[N] ||q_i (x) h_i||^2 = ||q_i||^2 ||h_i||^2."""
  return jnp.sum(q * q, -1) * jnp.sum(h * h, -1)


def sq_dist_to(h, q, g2, i) -> jax.Array:
  """[N] ||g_n - g_i||^2 from the factors, clamped at 0 (round-off)."""
  hi, qi = row(h, i), row(q, i)  # gathers: no all-gather of sharded rows
  return jnp.maximum(g2 + row(g2, i) - 2.0 * (q @ qi) * (h @ hi), 0.0)


def kmeans_pp_gradient(h, q, candidates, budget: int, key):
  """BADGE's k-means++ seeding on g = q (x) h among `candidates`.

  Step t >= 1 draws argmax_n (log D_n^2 + G_t[n]) over remaining candidates
  with D_n > 0, G_t = jax.random.gumbel(fold_in(key, t), (N,)); if every
  remaining D is 0 it takes argmax_n G_t[n] over the remaining candidates.

  Args:
    h: [N, d], q: [N, C] factors (rows may be sharded). candidates: [N] bool.
    budget: static number of centres (<= number of candidates).
    key: PRNG key.
  Returns:
    (positions [budget] int32, D of each pick when picked; the first pick
    carries its norm ||g||).
  """
  h, q = h.astype(jnp.float32), q.astype(jnp.float32)
  g2 = sq_norms(h, q)
  first = jnp.argmax(jnp.where(candidates, g2, -1.0))
  min_d = sq_dist_to(h, q, g2, first)
  cand = candidates & (jnp.arange(g2.shape[0]) != first)
  picks = jnp.zeros((budget,), jnp.int32).at[0].set(first.astype(jnp.int32))
  dists = jnp.zeros((budget,), jnp.float32).at[0].set(jnp.sqrt(row(g2, first)))

  def body(t, carry):
    min_d, cand, picks, dists = carry
    gumbel = jax.random.gumbel(jax.random.fold_in(key, t), min_d.shape, jnp.float32)
    positive = cand & (min_d > 0)
    by_d2 = jnp.argmax(jnp.where(positive, jnp.log(jnp.where(positive, min_d, 1.0)) + gumbel,
                                 -jnp.inf))
    uniform = jnp.argmax(jnp.where(cand, gumbel, -jnp.inf))
    i = jnp.where(jnp.any(positive), by_d2, uniform)
    d_i = jnp.sqrt(row(min_d, i))
    min_d = jnp.minimum(min_d, sq_dist_to(h, q, g2, i))
    cand = cand & (jnp.arange(cand.shape[0]) != i)
    return min_d, cand, picks.at[t].set(i.astype(jnp.int32)), dists.at[t].set(d_i)

  _, _, picks, dists = jax.lax.fori_loop(1, budget, body, (min_d, cand, picks, dists))
  return picks, dists


def badge(fns, *, bias: bool = False) -> Strategy:
  """BADGE: k-means++ seeding on last-layer gradient embeddings.

  Args:
    fns: the model's `models.Functional`.
    bias: include the head-bias gradient in the embedding (reference: no).
  """
  def score(params, rest, batch, key):
    del key
    return badge_factors(fns, params, rest, batch["x"], bias)

  def select(feats, pool, budget, key):
    pos, dists = kmeans_pp_gradient(feats["h"], feats["q"], pool.unlabelled, budget, key)
    return pool.ids[pos], dists

  return Strategy(score, select)
