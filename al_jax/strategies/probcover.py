"""ProbCover (Yehuda et al. 2022): greedy max coverage of delta-balls.

On L2-normalised embeddings, the directed graph i -> j for ||x_i - x_j|| <
delta is built in row blocks as a sparse edge list (never a dense N x N
matrix; memory O(E)). Rows covered by the labelled set are removed, then each
pick is the unlabelled row whose ball holds the most uncovered rows, and its
ball becomes covered: O(E) per pick inside one jitted fori_loop. When
nothing is left to cover, picks are uniform among the remaining unlabelled
rows. The reference does worse there: once every degree is 0 its argmax
returns the same row each time, a row that may already be labelled, so its
budget is spent on repeats; ours always spends it on new unlabelled rows.

delta: given, or (delta=0) the purity heuristic of the paper: k-means with
k = number of classes; a ball is pure when all its rows share the centre's
cluster; delta is the largest radius with purity >= alpha. With m_i the
distance from row i to the nearest row of another cluster, ball(i, delta) is
pure iff delta <= m_i, so delta = the (1 - alpha) quantile of m: the value
with ceil(alpha N) rows at or above it (one blocked pass; the reference
scans a grid of deltas).

Differences from the reference (avihu111/TypiClust `pycls/al/prob_cover.py`):
features are the task model's embeddings (not SimCLR); ties in the degree go
to the lowest row (argmax), as in the reference.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from al_jax import sharding
from al_jax.kernels import clustering
from al_jax.strategies.base import Strategy
from al_jax.strategies.diversity import embed_score

_kmeans = jax.jit(clustering.kmeans, static_argnums=(2, 4))


def _row_blocks(n: int, block: int):
  return [(s, min(s + block, n)) for s in range(0, n, block)]


def _block_sq_dists(x, valid, start, size: int):
  """Squared distances of rows [start, start + size) to every row; invalid -> inf."""
  # A gather, not a dynamic slice: with x sharded by rows only the block's
  # rows are exchanged, not the whole array (see sharding.row).
  xb = jnp.take(x, start + jnp.arange(size), axis=0)
  return jnp.where(valid[None, :], clustering.sq_dists(xb, x), jnp.inf)


@functools.partial(jax.jit, static_argnums=(4,))
def _block_min_other(x, valid, assign, start, size: int):
  """Per row of the block: min distance to a valid row of another cluster."""
  d = _block_sq_dists(x, valid, start, size)
  ab = jnp.take(assign, start + jnp.arange(size), axis=0)
  return jnp.sqrt(jnp.min(jnp.where(assign[None, :] != ab[:, None], d, jnp.inf), axis=1))


@functools.partial(jax.jit, static_argnums=(3,))
def _block_adjacency(x, valid, start, size: int, delta):
  """[size, N] bool: ||x_i - x_j|| < delta (only a bool block reaches the host)."""
  return _block_sq_dists(x, valid, start, size) < delta * delta


def nearest_other_cluster(x, valid, assign, block: int = 1024) -> np.ndarray:
  """m_i = min distance from row i to a valid row of another cluster."""
  n = x.shape[0]
  out = np.full(n, np.inf)
  bs = min(block, n)
  for s, e in _row_blocks(n, bs):
    start = min(s, n - bs)  # Fixed block shape: the last block overlaps.
    out[s:e] = np.asarray(_block_min_other(x, valid, assign, start, bs))[s - start:]
  return out


def purity_delta(x, valid, num_classes: int, alpha: float, key, num_iters: int = 50) -> float:
  """Largest delta whose ball purity (w.r.t. k-means clusters) is >= alpha."""
  _, assign, _ = _kmeans(x, valid, num_classes, key, num_iters)
  m = nearest_other_cluster(x, valid, assign)
  m = np.sort(m[np.asarray(sharding.to_host(valid))])
  # Purity(delta) = mean(m >= delta) is >= alpha up to the value with
  # ceil(alpha n) rows at or above it.
  return float(m[max(len(m) - int(np.ceil(alpha * len(m) - 1e-9)), 0)])


def delta_graph(x, valid, delta: float, max_edges: int, block: int = 1024):
  """Edges (src, dst) with ||x_src - x_dst|| < delta among valid rows."""
  n = x.shape[0]
  v = np.asarray(sharding.to_host(valid))
  bs = min(block, n)
  src, dst, total = [], [], 0
  for s, e in _row_blocks(n, bs):
    start = min(s, n - bs)
    adj = np.asarray(_block_adjacency(x, valid, start, bs, delta))[s - start:]
    i, j = np.nonzero(adj & v[s:e, None])
    total += len(i)
    if total > max_edges:
      raise ValueError(f"ProbCover: delta={delta:.4g} gives more than max_edges={max_edges} "
                       f"edges after {e} of {n} rows; lower delta or raise max_edges")
    src.append((i + s).astype(np.int32))
    dst.append(j.astype(np.int32))
  return np.concatenate(src), np.concatenate(dst)


@functools.partial(jax.jit, static_argnums=(4, 5))
def greedy_cover(src, dst, labelled, candidates, n: int, budget: int, key):
  """Max-coverage greedy over an edge list padded with src = dst = n.

  Returns (positions [budget], newly covered count of each pick).
  """
  lab = jnp.concatenate([labelled, jnp.zeros(1, bool)])
  covered = jax.ops.segment_max(lab[src].astype(jnp.int32), dst, num_segments=n + 1) > 0
  live = (src < n) & ~covered[dst]
  rand = jax.random.uniform(key, (n,))

  def body(t, carry):
    live, cand, picks, gains = carry
    deg = jax.ops.segment_sum(live.astype(jnp.int32), src, num_segments=n + 1)[:n]
    deg_c = jnp.where(cand, deg, -1)
    best = jnp.argmax(deg_c)
    cur = jnp.where(deg_c[best] > 0, best, jnp.argmax(jnp.where(cand, rand, -1.0)))
    new = jax.ops.segment_max((live & (src == cur)).astype(jnp.int32), dst,
                              num_segments=n + 1) > 0
    return (live & ~new[dst], cand.at[cur].set(False), picks.at[t].set(cur.astype(jnp.int32)),
            gains.at[t].set(jnp.maximum(deg_c[cur], 0)))

  init = (live, candidates, jnp.zeros(budget, jnp.int32), jnp.zeros(budget, jnp.int32))
  _, _, picks, gains = jax.lax.fori_loop(0, budget, body, init)
  return picks, gains


def _pad_pow2(a: np.ndarray, fill: int) -> np.ndarray:
  size = 1 << max(int(np.ceil(np.log2(max(len(a), 1)))), 10)
  return np.concatenate([a, np.full(size - len(a), fill, a.dtype)])


def probcover(fns, *, delta: float = 0.0, alpha: float = 0.95, max_edges: int = 20_000_000,
              num_iters: int = 50) -> Strategy:
  """ProbCover.

  Args:
    delta: ball radius on L2-normalised embeddings; 0 picks it each round by
      the purity heuristic (k-means with one cluster per class).
    alpha: purity threshold of that heuristic (the paper's 0.95).
    max_edges: fail loudly above this many graph edges (memory guard).
    num_iters: k-means iterations of the heuristic.
  """
  def select(emb, pool, budget, key, ext=None):
    del ext
    k_delta, k_pick = jax.random.split(key)
    d = delta or purity_delta(emb, pool.valid, fns.num_classes, alpha, k_delta, num_iters)
    src, dst = delta_graph(emb, pool.valid, d, max_edges)
    n = emb.shape[0]
    logging.info("probcover: delta %.4g, %d edges (%.1f per row)", d, len(src),
                 len(src) / max(int(np.asarray(sharding.to_host(pool.valid)).sum()), 1))
    pos, gains = greedy_cover(jnp.asarray(_pad_pow2(src, n)), jnp.asarray(_pad_pow2(dst, n)),
                              pool.labelled & pool.valid, pool.unlabelled, n, budget, k_pick)
    ids = np.asarray(sharding.to_host(pool.ids))
    return ids[np.asarray(pos)], np.asarray(gains, np.float32)

  return Strategy(embed_score(fns, normalize=True), select, jit_select=False)
