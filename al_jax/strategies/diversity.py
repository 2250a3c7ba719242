"""Diversity strategies on penultimate embeddings: coreset, coreset_mip, kmeans.

coreset (Sener & Savarese 2018): k-center greedy with the labelled set as
initial centres. Unlike DeepAL+ (full N x N matrix, ~10 GB at N = 50k) it
keeps one O(N) min-distance vector; embeddings are computed without
train-time augmentation (DeepAL+ embeds under transform_train).

coreset_mip: robust k-center by binary search over a set-cover MIP
(`al_jax.kernels.kcenter_mip`), on a candidate subset, falling back to the greedy.

kmeans: k-means (k = budget) of the unlabelled embeddings, then the
unlabelled row nearest each centroid (DeepAL+ `KMeansSampling`). TypiClust,
ProbCover and Cluster-Margin live in their own modules.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from al_jax import sharding
from al_jax.kernels import clustering, kcenter, kcenter_mip
from al_jax.strategies.base import Strategy


def embed_score(fns, normalize: bool = False):
  """Score function returning penultimate embeddings (optionally L2-normalised)."""
  def score(params, rest, batch, key, ext=None):
    del key, ext
    h = fns.apply(params, rest, batch["x"])[1]["pre_logits"].astype(jnp.float32)
    if normalize:
      h = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    return h
  return score


def coreset(fns, *, block: int = 256) -> Strategy:
  """k-center greedy; `block` = labelled centres per distance block."""
  def select(emb, pool, budget, key, ext=None):
    del ext
    pos, dists = kcenter.k_center_greedy(emb, pool.labelled & pool.valid, pool.unlabelled,
                                         budget, key, block)
    return pool.ids[pos], dists

  return Strategy(embed_score(fns), select)


_greedy = jax.jit(kcenter.k_center_greedy, static_argnums=(3, 5))
_min_sq_dist = jax.jit(kcenter.min_sq_dist_to_centres, static_argnums=2)


def coreset_mip(fns, *, max_candidates: int = 1000, max_outliers: int = 0,
                node_limit: int = 2000, time_limit: float | None = None,
                block: int = 256) -> Strategy:
  """Robust k-center (Sener & Savarese 2018) via scipy.optimize.milp.

  Args:
    max_candidates: unlabelled rows the MIP sees. When the unlabelled pool is
      larger, the subset is the full-pool greedy picks plus random other
      unlabelled rows (seeded by the select key), so the MIP never does worse
      than the greedy on the subset; the radius is then that of the subset.
    max_outliers: the outlier budget Xi (points the cover may leave out).
    node_limit: HiGHS branch-and-bound nodes per solve: a budget that ends
      the same way on any machine, so a seed gives the same ids anywhere. A
      solve that ends without an answer stops the search and keeps the best
      solution so far (the greedy at worst), with a logged warning.
    time_limit: optional seconds per solve, a safety net only (None: no
      wall-clock limit); when it binds, picks depend on machine speed.
    block: labelled centres per distance block (as coreset).
  """
  def select(emb, pool, budget, key, ext=None):
    del ext
    centres, cand = pool.labelled & pool.valid, pool.unlabelled
    g_pos, _ = _greedy(emb, centres, cand, budget, key, block)
    d_lab_all = np.sqrt(np.asarray(sharding.to_host(_min_sq_dist(emb, centres, block)), np.float64))
    emb_h, ids = np.asarray(sharding.to_host(emb)), np.asarray(sharding.to_host(pool.ids))
    unl = np.flatnonzero(np.asarray(sharding.to_host(cand)))
    g_pos = np.asarray(sharding.to_host(g_pos))
    if len(unl) > max_candidates:
      rest_rows = np.setdiff1d(unl, g_pos)
      seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
      extra = np.random.default_rng(seed).choice(
          rest_rows, max(max_candidates - budget, 0), replace=False)
      subset = np.sort(np.concatenate([g_pos, extra]))
    else:
      subset = unl
    first = int(np.searchsorted(subset, g_pos[0]))  # Same random start as the greedy.
    picks, r, r_greedy, info = kcenter_mip.robust_k_center(
        kcenter_mip.pairwise(emb_h[subset]), d_lab_all[subset], budget, max_outliers,
        time_limit, first, node_limit)
    logging.info("coreset_mip: radius %.5g (greedy %.5g) on %d candidates, %d solves%s",
                 r, r_greedy, len(subset), info["solves"],
                 " (fallback)" if info["fallback"] else "")
    pos = subset[np.asarray(picks)]
    return ids[pos], d_lab_all[pos].astype(np.float32)

  return Strategy(embed_score(fns), select, jit_select=False)


def nearest_to_centroids(emb, mask, centroids, assign, sq_dist, budget: int, key):
  """Positions of the masked row nearest each non-empty cluster's centroid,
  topped up with random masked rows for empty clusters (as DeepAL+ would
  crash on them). Clusters are disjoint, so the picks are unique.

  Returns (positions [budget], score = -distance to the centroid, -inf for
  top-ups).
  """
  del emb
  n, k = mask.shape[0], centroids.shape[0]
  seg = jnp.where(mask, assign, 0)
  d = jnp.where(mask, sq_dist, jnp.inf)
  best = jax.ops.segment_min(d, seg, num_segments=k)
  pos = jnp.arange(n)
  is_best = mask & (d == best[seg])
  first = jax.ops.segment_min(jnp.where(is_best, pos, n), seg, num_segments=k)
  chosen = jnp.zeros(n, bool).at[first].set(True, mode="drop")
  # Picks rank above every top-up; top-ups are uniform among the rest.
  rank = jnp.where(chosen, 2.0, jax.random.uniform(key, (n,)))
  top = jax.lax.top_k(jnp.where(mask, rank, -jnp.inf), budget)[1]
  return top, jnp.where(chosen[top], -jnp.sqrt(d[top]), -jnp.inf)


def kmeans(fns, *, num_iters: int = 50, normalize: bool = False) -> Strategy:
  """k-means (k-means++ seeds, Lloyd in JAX) with k = budget on the
  unlabelled embeddings; queries the row nearest each centroid."""
  def select(emb, pool, budget, key, ext=None):
    del ext
    k_fit, k_fill = jax.random.split(key)
    mask = pool.unlabelled
    c, a, d = clustering.kmeans(emb, mask, budget, k_fit, num_iters)
    pos, score = nearest_to_centroids(emb, mask, c, a, d, budget, k_fill)
    return pool.ids[pos], score

  return Strategy(embed_score(fns, normalize), select)
