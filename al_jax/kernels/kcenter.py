"""k-center greedy (Sener & Savarese 2018) over an O(N) min-distance vector.

Never builds an N x N matrix: the distance of every row to the labelled
centres is computed in blocks of `block` centres, and each greedy pick costs
one matrix-vector product. With the rows sharded over the `data` axis, jit
keeps the products shard-local and the argmax global.
"""

import jax
import jax.numpy as jnp

from al_jax.sharding import row


def _sq_dist_to(emb, sq, i):
  """Squared distances of every row to row i, clamped at 0 (round-off)."""
  return jnp.maximum(sq + row(sq, i) - 2.0 * emb @ row(emb, i), 0.0)


def min_sq_dist_to_centres(emb, centres, block: int = 256):
  """min_c ||emb_i - emb_c||^2 over rows c with centres[c]; +inf if none."""
  n = emb.shape[0]
  sq = jnp.sum(emb * emb, -1)
  order = jnp.argsort(~centres)  # centre rows first (stable)
  n_c = jnp.sum(centres)
  pad = (-n) % block
  order = jnp.concatenate([order, jnp.zeros(pad, order.dtype)])

  def body(b, min_d):
    idx = jax.lax.dynamic_slice(order, (b * block,), (block,))
    ok = (b * block + jnp.arange(block)) < n_c
    d = jnp.maximum(sq[:, None] + sq[idx][None, :] - 2.0 * emb @ emb[idx].T, 0.0)
    return jnp.minimum(min_d, jnp.min(jnp.where(ok[None, :], d, jnp.inf), axis=1))

  return jax.lax.fori_loop(0, (n_c + block - 1) // block, body, jnp.full((n,), jnp.inf))


def k_center_greedy(emb, centres, candidates, budget: int, key, block: int = 256):
  """Greedy picks x* = argmax_u min_c ||u - c|| among `candidates`.

  Args:
    emb: [N, D] embeddings. centres: [N] bool initial centres (the labelled
      set). candidates: [N] bool rows that may be picked. budget: static.
    key: picks the first centre uniformly among candidates when there are no
      initial centres (seeded random start).
  Returns:
    (positions [budget], min distance (not squared) of each pick when picked).
  """
  emb = emb.astype(jnp.float32)
  sq = jnp.sum(emb * emb, -1)
  has_centres = jnp.any(centres)
  first = jnp.argmax(jnp.where(candidates, jax.random.uniform(key, candidates.shape), -1.0))
  min_d = jnp.where(has_centres, min_sq_dist_to_centres(emb, centres, block),
                    _sq_dist_to(emb, sq, first))
  picks = jnp.zeros((budget,), jnp.int32).at[0].set(first.astype(jnp.int32))
  dists = jnp.zeros((budget,), jnp.float32).at[0].set(jnp.inf)
  cand = jnp.where(has_centres, candidates, candidates.at[first].set(False))

  def body(t, carry):
    min_d, cand, picks, dists = carry
    i = jnp.argmax(jnp.where(cand, min_d, -1.0))
    return (jnp.minimum(min_d, _sq_dist_to(emb, sq, i)), cand.at[i].set(False),
            picks.at[t].set(i.astype(jnp.int32)), dists.at[t].set(jnp.sqrt(row(min_d, i))))

  start = jnp.where(has_centres, 0, 1)
  _, _, picks, dists = jax.lax.fori_loop(start, budget, body, (min_d, cand, picks, dists))
  return picks, dists
