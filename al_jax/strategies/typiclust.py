"""TypiClust (Hacohen et al. 2022): the most typical point of the largest
uncovered clusters.

Cluster the pool (labelled + unlabelled, L2-normalised embeddings) into
min(|L| + budget, max_clusters) clusters with k-means in JAX; drop clusters of
at most `min_cluster_size` rows; visit clusters round-robin ordered by
(labelled count ascending, size descending); in each, query the unlabelled
row of highest typicality 1 / (mean distance to its K nearest unlabelled
cluster-mates + 1e-5), K = min(knn, n // 2), recomputed after every pick.

Differences from the reference (avihu111/TypiClust `pycls/al/typiclust.py`):
- Features are the task model's penultimate embeddings (the paper uses
  self-supervised SimCLR features; none are trained here).
- Typicality uses Euclidean distances as in the paper; the reference's faiss
  IndexFlatL2 returns squared distances.
- One k-means (k-means++ seeds, Lloyd to convergence) for every k; the
  reference switches to MiniBatchKMeans above 50 clusters.
- A visited cluster with no unlabelled rows left is skipped, and when every
  cluster is below the size floor all non-empty clusters are kept (the
  reference fails in both cases).
Selection runs on the host (the visiting order is sequential and data
dependent); k-means and the per-cluster distances are jitted/NumPy blocks.
"""

import jax
import numpy as np

from al_jax import sharding
from al_jax.kernels import clustering
from al_jax.strategies.base import Strategy
from al_jax.strategies.diversity import embed_score

_kmeans = jax.jit(clustering.kmeans, static_argnums=(2, 4))


def typicality(x: np.ndarray, knn: int, block: int = 2048) -> np.ndarray:
  """1 / (mean Euclidean distance to the K nearest other rows + 1e-5),
  K = min(knn, n // 2) (at least 1); a single row gets typicality 1e5."""
  n = len(x)
  if n == 1:
    return np.full(1, 1e5)
  k = max(1, min(knn, n // 2))
  x = np.asarray(x, np.float64)
  sq = np.sum(x * x, -1)
  out = np.empty(n)
  for s in range(0, n, block):  # Blocks of rows: memory O(block * n).
    d = np.sqrt(np.maximum(sq[s:s + block, None] + sq[None] - 2.0 * x[s:s + block] @ x.T, 0.0))
    d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf  # Not its own neighbour.
    near = np.partition(d, k - 1, axis=1)[:, :k]
    out[s:s + block] = 1.0 / (near.mean(1) + 1e-5)
  return out


def typiclust_select(emb: np.ndarray, assign: np.ndarray, labelled: np.ndarray,
                     valid: np.ndarray, budget: int, knn: int = 20,
                     min_cluster_size: int = 5) -> list[int]:
  """The TypiClust visiting rule on host arrays; returns pool positions."""
  a = np.where(valid, assign, -1)
  ids = np.unique(a[a >= 0])
  sizes = np.array([(a == c).sum() for c in ids])
  lab_counts = np.array([((a == c) & labelled).sum() for c in ids])
  keep = sizes > min_cluster_size
  if not keep.any():
    keep = sizes > 0
  ids, sizes, lab_counts = ids[keep], sizes[keep], lab_counts[keep]
  order = ids[np.lexsort((ids, -sizes, lab_counts))]
  free = np.where(valid & ~labelled, a, -1)
  picks, i, misses = [], 0, 0
  while len(picks) < budget:
    if misses == len(order):  # Every kept cluster is exhausted: use the rest.
      order, misses = np.unique(free[free >= 0]), 0
      if not len(order):
        raise ValueError(f"TypiClust: only {len(picks)} unlabelled rows for budget {budget}")
    c = order[i % len(order)]
    i += 1
    members = np.flatnonzero(free == c)
    if not len(members):
      misses += 1
      continue
    misses = 0
    p = int(members[np.argmax(typicality(emb[members], knn))])
    picks.append(p)
    free[p] = -1
  return picks


def typiclust(fns, *, max_clusters: int = 500, min_cluster_size: int = 5, knn: int = 20,
              num_iters: int = 50) -> Strategy:
  """TypiClust; defaults as the reference (500 clusters, size > 5, 20-NN)."""
  def select(emb, pool, budget, key, ext=None):
    del ext
    valid = np.asarray(sharding.to_host(pool.valid))
    labelled = np.asarray(sharding.to_host(pool.labelled)) & valid
    k = int(min(labelled.sum() + budget, max_clusters, valid.sum()))
    _, assign, _ = _kmeans(emb, pool.valid, k, key, num_iters)
    emb_h = np.asarray(sharding.to_host(emb))
    pos = np.asarray(typiclust_select(emb_h, np.asarray(sharding.to_host(assign)), labelled,
                                      valid, budget, knn, min_cluster_size))
    ids = np.asarray(sharding.to_host(pool.ids))
    # Score: the pick's order (earlier = more important), as a float.
    return ids[pos], -np.arange(budget, dtype=np.float32)

  return Strategy(embed_score(fns, normalize=True), select, jit_select=False)
