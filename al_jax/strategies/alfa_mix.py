"""ALFA-Mix (Parvaneh et al., CVPR 2022): feature mixing towards class anchors.

For every unlabelled row with penultimate features z and predicted label
y_hat, and every class anchor a_k (mean labelled features of class k; the
mean of all labelled features for a class with no labels), mix
  z_mix = (1 - alpha) * z + alpha * a_k    (alpha per dimension)
and mark the row a candidate if head(z_mix) no longer predicts y_hat for
some anchor. The candidates' L2-normalised features are clustered with
k-means (k = budget) and the candidate nearest each centroid is queried;
with fewer candidates than the budget all are taken and the rest is filled
at random (as the reference does).

alpha, two variants (`alpha_mode`):
- "closed_form" (the paper's approximation, reference `--alpha_closed_form_approx`):
  with g = grad_z CE(head(z), y_hat) and eps = cap / sqrt(d),
    alpha = eps ||a - z|| / ||g|| * g / (a - z),
  the maximiser of the linearised loss g . (alpha * (a - z)) subject to
  ||alpha * (a - z)|| <= eps ||a - z||; the mix is z + eps ||a - z|| g/||g||.
- "grid": a scalar alpha on the grid cap * (1..alpha_grid) / alpha_grid; the
  smallest flipping alpha is kept. (The reference's non-closed-form default
  draws alpha at random per dimension; a grid is deterministic and exact.)
The cap grows by `alpha_cap` (reference: starts at 0, adds alpha_cap while
< 1) and stops as soon as more than `budget` candidates were found.

How it fits the score/select contract: score returns, per pool row, z, the
logits, g and the directional derivative of the logits along g (one jvp).
The head is affine (an nnx.Linear in every model), so select gets the mixed
logits exactly without the parameters:
  head((1 - alpha) z + alpha a) = (1 - alpha) head(z) + alpha head(a)  (grid)
  head(z + s g) = head(z) + s (g W)                                (closed form)
and head(anchor) = mean of the labelled rows' logits of that class.
Differences from the reference code (AMX `alpha_mix_sampling.py`):
- closed form: the reference divides by (a - z + 1e-8), which zeroes the
  step on dimensions where a = z; we apply the step the formula intends
  (eps ||a - z|| g/||g|| on every dimension). The reported ||alpha|| uses
  the reference formula.
- k-means: greedy k-means++ seeding plus `kmeans_iters` Lloyd steps in JAX
  (al_jax.kernels.clustering; reference: sklearn KMeans).
"""

import math

import jax
import jax.numpy as jnp

from al_jax.kernels import clustering
from al_jax.strategies.base import Strategy

ALPHA_MODES = ("closed_form", "grid")


def closed_form_alpha(z, anchor, g, cap):
  """The reference's closed-form alpha [B, D] (eps = cap / sqrt(d))."""
  eps = cap / math.sqrt(z.shape[-1])
  diff = anchor - z
  s = eps * jnp.linalg.norm(diff, axis=-1) / jnp.maximum(jnp.linalg.norm(g, axis=-1), 1e-12)
  return s[:, None] * g / (diff + 1e-8)


def anchors(z, logits, pool, num_classes):
  """Per-class mean labelled features and logits ([C, D], [C, C]).

  A class with no labelled rows gets the mean over all labelled rows.
  """
  lab = pool.labelled.astype(z.dtype)
  onehot = jax.nn.one_hot(pool.labels, num_classes, dtype=z.dtype) * lab[:, None]
  counts = onehot.sum(0)
  n_lab = jnp.maximum(lab.sum(), 1.0)

  def mean(v):
    per = onehot.T @ v / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, per, (lab @ v / n_lab)[None])

  return mean(z), mean(logits)


def find_candidates(feats, pool, budget, num_classes, *, alpha_cap, alpha_mode, alpha_grid):
  """Candidate mask [N] and the smallest alpha norm [N] (inf if none flips)."""
  z, logits, g, g_dir = feats["z"], feats["logits"], feats["grad"], feats["grad_logits"]
  d = z.shape[-1]
  pred = jnp.argmax(logits, -1)
  a_z, a_logits = anchors(z, logits, pool, num_classes)
  gnorm = jnp.maximum(jnp.linalg.norm(g, axis=-1), 1e-12)
  steps = max(1, math.ceil(1.0 / alpha_cap - 1e-9))
  grid = jnp.arange(1, alpha_grid + 1, dtype=z.dtype) / alpha_grid  # fractions of the cap

  def per_anchor(cap, k):
    """(flips [N], alpha norm [N]) of mixing every row towards anchor k."""
    if alpha_mode == "closed_form":
      diff_n = jnp.linalg.norm(a_z[k][None] - z, axis=-1)
      s = cap / math.sqrt(d) * diff_n / gnorm
      flips = jnp.argmax(logits + s[:, None] * g_dir, -1) != pred
      alpha = closed_form_alpha(z, jnp.broadcast_to(a_z[k], z.shape), g, cap)
      return flips, jnp.linalg.norm(alpha, axis=-1)
    alphas = cap * grid                                           # [G]
    mixed = ((1 - alphas)[None, :, None] * logits[:, None] +
             alphas[None, :, None] * a_logits[k][None, None])     # [N, G, C]
    flip_g = jnp.argmax(mixed, -1) != pred[:, None]               # [N, G]
    first = jnp.argmax(flip_g, -1)                                # smallest flipping alpha
    return flip_g.any(-1), alphas[first] * math.sqrt(d)

  def one_cap(cap):
    def body(carry, k):
      cand, best = carry
      flips, norm = per_anchor(cap, k)
      return (cand | flips, jnp.where(flips, jnp.minimum(best, norm), best)), None
    n = z.shape[0]
    init = (jnp.zeros((n,), bool), jnp.full((n,), jnp.inf, z.dtype))
    return jax.lax.scan(body, init, jnp.arange(num_classes))[0]

  unl = pool.unlabelled

  def cond(state):
    s, cand, _ = state
    return (s < steps) & (jnp.sum(cand) <= budget)

  def body(state):
    s, cand, best = state
    c, b = one_cap((s + 1).astype(z.dtype) * alpha_cap)
    return s + 1, cand | (c & unl), jnp.minimum(best, jnp.where(c & unl, b, jnp.inf))

  init = (jnp.zeros((), jnp.int32), jnp.zeros(z.shape[:1], bool),
          jnp.full(z.shape[:1], jnp.inf, z.dtype))
  _, cand, best = jax.lax.while_loop(cond, body, init)
  return cand, best


def nearest_to_centres(x, mask, k: int, key, iters: int = 20):
  """Boolean [N]: for each non-empty cluster, its masked row nearest the centre."""
  n = x.shape[0]
  # tol=0: Lloyd runs until nothing moves or `iters` steps, as the reference.
  _, assign, d2 = clustering.kmeans(x, mask, k, key, iters, tol=0.0, init="greedy_kmeans++")
  d2 = jnp.where(mask, d2, jnp.inf)
  seg = jnp.where(mask, assign, k)  # unmasked rows go to a dropped segment
  best = jax.ops.segment_min(d2, seg, num_segments=k + 1)
  pos = jnp.arange(n)
  is_best = mask & (d2 <= best[seg])
  first = jax.ops.segment_min(jnp.where(is_best, pos, n), seg, num_segments=k + 1)[:k]
  return jnp.zeros((n + 1,), bool).at[first].set(True)[:n]


def alfa_mix(fns, *, alpha_cap: float = 0.2, alpha_mode: str = "closed_form",
             alpha_grid: int = 10, kmeans_iters: int = 20) -> Strategy:
  """ALFA-Mix strategy.

  Args:
    fns: the model's `models.Functional` (its head must be affine).
    alpha_cap: cap step; the paper uses 0.2 (reference default 0.03125).
    alpha_mode: "closed_form" or "grid".
    alpha_grid: grid points per cap (grid mode).
    kmeans_iters: Lloyd iterations.
  """
  if alpha_mode not in ALPHA_MODES:
    raise ValueError(f"Unknown alfa_mix alpha_mode '{alpha_mode}'; known: {list(ALPHA_MODES)}")
  if not 0 < alpha_cap <= 1:
    raise ValueError(f"alfa_mix alpha_cap must be in (0, 1], got {alpha_cap}")
  if alpha_grid < 1:
    raise ValueError(f"alfa_mix alpha_grid must be >= 1, got {alpha_grid}")
  num_classes = fns.num_classes

  def score(params, rest, batch, key, ext=None):
    del key, ext
    z = fns.apply(params, rest, batch["x"])[1]["pre_logits"].astype(jnp.float32)
    head = lambda h: fns.head(params, rest, h).astype(jnp.float32)
    logits = head(z)
    pred = jnp.argmax(logits, -1)

    def ce(h):  # summed so grad gives per-row gradients in one call
      logp = jax.nn.log_softmax(head(h))
      return -jnp.sum(jnp.take_along_axis(logp, pred[:, None], 1))

    g = jax.grad(ce)(z)
    _, g_dir = jax.jvp(head, (z,), (g,))  # = g @ W: logits change along g
    return {"z": z, "logits": logits, "grad": g, "grad_logits": g_dir}

  def select(feats, pool, budget, key, ext=None):
    del ext
    cand, best = find_candidates(feats, pool, budget, num_classes, alpha_cap=alpha_cap,
                                 alpha_mode=alpha_mode, alpha_grid=alpha_grid)
    k_km, k_fill = jax.random.split(key)
    z = feats["z"]
    zn = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    picks = jax.lax.cond(jnp.sum(cand) <= budget, lambda: cand,
                         lambda: nearest_to_centres(zn, cand, budget, k_km, kmeans_iters))
    # Picks (at most `budget`) first, then a uniformly random fill.
    prio = jnp.where(picks, 2.0, jax.random.uniform(k_fill, cand.shape))
    prio = jnp.where(pool.unlabelled, prio, -jnp.inf)
    pos = jax.lax.top_k(prio, budget)[1]
    return pool.ids[pos], jnp.where(picks[pos], best[pos], -1.0).astype(jnp.float32)

  return Strategy(score, select)
