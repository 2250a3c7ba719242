"""BADGE's k-means++ seeding on factorised gradient embeddings g = q (x) h.

Distances are never computed on the C*d-dimensional g: with q = p - e_yhat,
  ||g_i - g_j||^2 = ||q_i||^2 ||h_i||^2 + ||q_j||^2 ||h_j||^2
                    - 2 (q_i . q_j)(h_i . h_j),
so memory is O(N (d + C)) and each pick costs two matrix-vector products
over one [N] min-distance vector sharded with the pool rows.
"""

import jax
import jax.numpy as jnp

from al_jax.sharding import row


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
