"""k-means in JAX with k-means++ seeding, on masked (padded) rows.

Two seedings: plain k-means++ (`kmeans_pp_init`; TypiClust, ProbCover, the
kmeans strategy) and greedy k-means++ (`greedy_kmeans_pp_init`, several
D^2 draws per centre, keep the best, as scikit-learn; ALFA-Mix).

Rows may be sharded over the `data` axis: every step is a row-wise matrix
product plus reductions, which jit keeps shard-local with one all-reduce for
the centroid sums. Memory is O(N k), never N x N.
"""

import math

import jax
import jax.numpy as jnp

from al_jax.sharding import row


def sq_dists(x, c, x_sq=None):
  """[N, K] squared Euclidean distances, clamped at 0 (round-off)."""
  x_sq = jnp.sum(x * x, -1) if x_sq is None else x_sq
  return jnp.maximum(x_sq[:, None] + jnp.sum(c * c, -1)[None, :] - 2.0 * x @ c.T, 0.0)


def kmeans_pp_init(x, mask, k: int, key):
  """k-means++ seeding (Arthur & Vassilvitskii 2007) among rows with `mask`.

  The first centre is uniform among masked rows; each next one is drawn with
  probability proportional to the squared distance to the nearest chosen
  centre (chosen rows have distance 0, so no repeats while distinct rows
  remain). One O(N d) pass per centre.

  Args:
    x: [N, D] float rows. mask: [N] bool rows that may be centres.
    k: static number of centres. key: PRNG key.
  Returns:
    [k] int32 row positions of the centres.
  """
  x = x.astype(jnp.float32)
  sq = jnp.sum(x * x, -1)
  keys = jax.random.split(key, k)
  first = jax.random.categorical(keys[0], jnp.where(mask, 0.0, -jnp.inf))
  # row(): a gather, so sharded rows are not all-gathered (see sharding.row).
  min_d = jnp.maximum(sq + row(sq, first) - 2.0 * x @ row(x, first), 0.0)
  picks = jnp.zeros((k,), jnp.int32).at[0].set(first.astype(jnp.int32))

  def body(t, carry):
    min_d, picks = carry
    # All remaining rows at distance 0 (duplicates): fall back to uniform.
    w = jnp.where(mask, min_d, 0.0)
    logits = jnp.where(jnp.sum(w) > 0, jnp.log(jnp.where(w > 0, w, 0.0)),
                       jnp.where(mask, 0.0, -jnp.inf))
    i = jax.random.categorical(keys[t], logits)
    min_d = jnp.minimum(min_d, jnp.maximum(sq + row(sq, i) - 2.0 * x @ row(x, i), 0.0))
    return min_d, picks.at[t].set(i.astype(jnp.int32))

  _, picks = jax.lax.fori_loop(1, k, body, (min_d, picks))
  return picks


def greedy_kmeans_pp_init(x, mask, k: int, key):
  """Greedy k-means++ seeding among rows with `mask` (scikit-learn's default).

  The first centre is uniform among masked rows (Gumbel argmax); each next
  one draws 2 + log(k) rows with p ~ squared distance to the nearest chosen
  centre (Gumbel top-k; uniform if every masked row sits on a centre) and
  keeps the one that lowers the total squared distance most.

  Args:
    x: [N, D] rows. mask: [N] bool rows that may be centres (at least one).
    k: static number of centres. key: PRNG key.
  Returns:
    [k] int32 row positions of the centres.
  """
  n = x.shape[0]
  x = x.astype(jnp.float32)
  sq = jnp.sum(x * x, -1)
  k0, key = jax.random.split(key)
  first = jnp.argmax(jnp.where(mask, jax.random.gumbel(k0, (n,)), -jnp.inf))
  mind = sq_dists(x, x[first][None], sq)[:, 0]
  picks = jnp.zeros((k,), jnp.int32).at[0].set(first.astype(jnp.int32))
  trials = 2 + int(math.log(k))

  def seed(i, carry):
    picks, mind = carry
    logits = jnp.where(mask & (mind > 0), jnp.log(jnp.maximum(mind, 1e-30)), -jnp.inf)
    logits = jnp.where(jnp.any(mask & (mind > 0)), logits, jnp.where(mask, 0.0, -jnp.inf))
    drawn, js = jax.lax.top_k(logits + jax.random.gumbel(jax.random.fold_in(key, i), (n,)),
                              trials)
    new_mind = jnp.minimum(mind[:, None], sq_dists(x, x[js], sq))   # [N, trials]
    cost = jnp.sum(jnp.where(mask[:, None], new_mind, 0.0), 0)
    best = jnp.argmin(jnp.where(drawn > -jnp.inf, cost, jnp.inf))  # never an unmasked row
    return picks.at[i].set(js[best].astype(jnp.int32)), new_mind[:, best]

  return jax.lax.fori_loop(1, k, seed, (picks, mind))[0]


SEEDINGS = {"kmeans++": kmeans_pp_init, "greedy_kmeans++": greedy_kmeans_pp_init}


def kmeans(x, mask, k: int, key, num_iters: int = 50, tol: float = 1e-6,
           init: str = "kmeans++"):
  """Lloyd's k-means from k-means++ seeds over the rows with `mask`.

  Runs until no centroid moves by more than `tol` (relative to the data
  scale) or `num_iters` iterations. A centroid that loses all its rows keeps
  its previous position (sklearn re-seeds it; keeping it is simpler and
  deterministic).

  Args:
    x: [N, D] rows. mask: [N] bool rows to cluster (others are ignored and
      get assignment -1). k: static cluster count. key: PRNG key (seeding).
    num_iters: maximum Lloyd iterations. tol: stopping threshold (0: run
      until no centroid moves, i.e. exactly `num_iters` steps' result).
    init: a SEEDINGS key.
  Returns:
    (centroids [k, D] float32, assignment [N] int32, squared distance of each
    row to its centroid [N]).
  """
  x = x.astype(jnp.float32)
  sq = jnp.sum(x * x, -1)
  w = mask.astype(jnp.float32)
  scale = jnp.sum(w * sq) / jnp.maximum(jnp.sum(w), 1.0) + 1e-12

  def assign(c):
    d = sq_dists(x, c, sq)
    return jnp.argmin(d, -1), jnp.min(d, -1)

  def update(c):
    a, _ = assign(c)
    onehot = jax.nn.one_hot(a, k, dtype=jnp.float32) * w[:, None]
    counts = jnp.sum(onehot, 0)
    sums = onehot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], c)

  def cond(carry):
    it, _, shift = carry
    return (it < num_iters) & (shift > tol * scale)

  def body(carry):
    it, c, _ = carry
    new = update(c)
    return it + 1, new, jnp.max(jnp.sum((new - c) ** 2, -1))

  if init not in SEEDINGS:
    raise ValueError(f"Unknown k-means init '{init}'; known: {sorted(SEEDINGS)}")
  c0 = jnp.take(x, SEEDINGS[init](x, mask, k, key), axis=0)
  _, c, _ = jax.lax.while_loop(cond, body, (0, c0, jnp.inf))
  a, d = assign(c)
  return c, jnp.where(mask, a, -1).astype(jnp.int32), d


def inertia(x, mask, centroids):
  """Sum over masked rows of the squared distance to the nearest centroid."""
  d = sq_dists(x.astype(jnp.float32), centroids)
  return jnp.sum(jnp.where(mask, jnp.min(d, -1), 0.0))
