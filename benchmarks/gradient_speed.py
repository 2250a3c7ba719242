"""Speed of full-network EGL and BADGE selection, fast vs slow, on N pool rows.

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
      .venv_bench_gradient/bin/python benchmarks/gradient_speed.py --sizes 1000,10000,50000

On a shared machine keep NumPy's BLAS single-threaded (as above): with the
cores oversubscribed, threaded BLAS spin-waits and the NumPy / scikit-activeml
columns came out ~10x slower (measured: N = 1,000, 100 picks, NumPy 0.18 s
with one thread vs 1.8 s with two).

EGL (full network, C = 10 classes, an MLP 784-256-128-10 on random
28x28 inputs, 235k parameters):
  vmap+lax.map   al_jax: vmap(grad) over examples x classes, norms inside the
                 vmap, microbatches run by lax.map (--microbatch rows);
  loop           one jitted call per example (vmap over its C classes): the
                 slow way; timed on --loop_max rows and extrapolated linearly;
  last layer     the closed form (for scale; a different, cheaper score).
BADGE selection of --budget rows among N (d = 128 features, C = 10):
  al_jax         factorised k-means++ (jitted lax.fori_loop, O(N (d + C)));
  NumPy          the same seeding on materialised g [N, C d] (as the old
                 reference code builds it);
  skactiveml     scikit-activeml 1.0.1's `Badge` on the same embeddings
                 (install with benchmarks/requirements-gradient.txt);
                 timed on --sk_max rows at most and extrapolated (marked ~).
Times are wall-clock seconds after one warm-up (compilation) call, best of
--repeats (the EGL per-example loop: one timing). Prints markdown tables.
"""

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from al_jax import models, per_example  # noqa: E402
from al_jax.strategies import gradient  # noqa: E402


def best_time(fn, repeats):
  jax.block_until_ready(fn())  # compile / warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return min(times)


def egl_rows(sizes, microbatch, loop_max, repeats, batch=500):
  fns = models.build("mlp", (28, 28, 1), 10, hidden=(256, 128))
  params, rest = fns.init(jax.random.key(0))
  n_params = models.num_params(params)

  @jax.jit
  def fast(p, x):  # score batches of `batch` rows, as the round loop does
    xb = x.reshape((-1, batch) + x.shape[1:])
    return jax.lax.map(lambda b: gradient.egl_scores(fns, p, rest, b, microbatch_size=microbatch),
                       xb).reshape(-1)

  @jax.jit
  def last_layer(p, x):
    return gradient.egl_scores(fns, p, rest, x, last_layer=True)

  grad = jax.grad(per_example.example_loss(fns))

  @jax.jit
  def one(p, xi):  # one example, its C class gradients
    probs = jax.nn.softmax(fns.apply(p, rest, xi[None])[0])
    norms = jax.vmap(lambda c: jnp.sqrt(per_example.tree_sq_norm(grad(p, rest, xi, c))))(
        jnp.arange(10))
    return jnp.sum(probs * norms)

  rows = []
  for n in sizes:
    if n % batch:
      raise ValueError(f"--sizes: {n} is not a multiple of the score batch {batch}")
    x = jax.random.normal(jax.random.key(n), (n, 28, 28, 1))
    t_fast = best_time(lambda: fast(params, x), repeats)
    t_ll = best_time(lambda: last_layer(params, x), repeats)
    m = min(n, loop_max)
    t_loop = best_time(lambda: [one(params, x[i]) for i in range(m)], 1) * n / m
    rows.append((n, t_fast, t_loop, m < n, t_ll))
  return n_params, rows


def np_kmeans_pp(g, budget, rng):
  """The reference-style seeding on materialised embeddings (float32)."""
  g2 = np.einsum("nd,nd->n", g, g)
  picks = [int(np.argmax(g2))]
  d2 = np.maximum(g2 + g2[picks[0]] - 2 * g @ g[picks[0]], 0)
  for _ in range(1, budget):
    d2[picks] = 0
    i = int(rng.choice(len(g), p=d2 / d2.sum()))
    picks.append(i)
    d2 = np.minimum(d2, np.maximum(g2 + g2[i] - 2 * g @ g[i], 0))
  return picks


def badge_rows(sizes, budget, sk_max, repeats, d=128, c=10):
  try:
    from skactiveml.pool import Badge  # noqa: F401
    have_sk = True
  except ImportError:
    have_sk = False
  select = jax.jit(gradient.kmeans_pp_gradient, static_argnums=3)
  rows = []
  for n in sizes:
    rng = np.random.default_rng(n)
    h = np.maximum(rng.normal(size=(n, d)), 0).astype(np.float32)  # ReLU-like features
    p = jax.nn.softmax(3 * rng.normal(size=(n, c))).astype(np.float32)
    q = np.asarray(p - jax.nn.one_hot(p.argmax(1), c))
    cand = jnp.ones(n, bool)
    hj, qj = jnp.asarray(h), jnp.asarray(q)
    t_ours = best_time(lambda: select(hj, qj, cand, budget, jax.random.key(0)), repeats)
    g = np.einsum("nd,nc->ndc", h, q).reshape(n, -1)
    t_np = best_time(lambda: np_kmeans_pp(g, budget, np.random.default_rng(0)), repeats)
    t_sk, sk_extrap = None, False
    if have_sk:
      m = min(n, sk_max)
      t_sk = min(sk_badge_time(h[:m], p[:m], budget) for _ in range(repeats)) * (n / m)
      sk_extrap = m < n
    rows.append((n, t_ours, t_np, t_sk, sk_extrap))
  return rows, have_sk


def sk_badge_time(h, p, budget):
  """scikit-activeml's Badge on embeddings h with probabilities p.

  Badge calls clf.predict_proba(X) on the candidates; a fixed-probability
  classifier returns our p, so both implementations see the same embedding.
  """
  from skactiveml.pool import Badge
  from skactiveml.classifier import SklearnClassifier
  from sklearn.base import BaseEstimator, ClassifierMixin

  lookup = {h_.tobytes(): p_ for h_, p_ in zip(h, p)}

  class Fixed(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, sample_weight=None):  # noqa: N803 (the wrapper passes X=)
      del X, y, sample_weight
      self.classes_ = np.arange(p.shape[1])
      return self

    def predict_proba(self, X):  # noqa: N803
      return np.stack([lookup[r.tobytes()] for r in np.asarray(X, np.float32)])

  y = np.full(len(h), np.nan)
  y[0] = 0  # one labelled row so the wrapper can fit
  clf = SklearnClassifier(Fixed(), classes=np.arange(p.shape[1]), missing_label=np.nan)
  qs = Badge(random_state=0)
  t = time.perf_counter()
  qs.query(h, y, clf=clf, fit_clf=True, batch_size=budget)  # fitting Fixed costs nothing
  return time.perf_counter() - t


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--sizes", default="1000,10000,50000")
  ap.add_argument("--microbatch", type=int, default=16)
  ap.add_argument("--loop_max", type=int, default=500)
  ap.add_argument("--budget", type=int, default=100)
  ap.add_argument("--sk_max", type=int, default=10000)
  ap.add_argument("--repeats", type=int, default=1)
  ap.add_argument("--skip_egl", action="store_true")
  args = ap.parse_args()
  sizes = [int(s) for s in args.sizes.split(",")]
  print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{jax.devices()[0].platform}; jax {jax.__version__}\n")
  if not args.skip_egl:
    n_params, rows = egl_rows(sizes, args.microbatch, args.loop_max, args.repeats)
    print(f"EGL, full network ({n_params:,} parameters, 10 classes), seconds:\n")
    print("| N | al_jax vmap+lax.map | per-example loop | speed-up | last layer (closed form) |")
    print("|---|---|---|---|---|")
    for n, t_fast, t_loop, extrap, t_ll in rows:
      print(f"| {n:,} | {t_fast:.2f} | {'~' if extrap else ''}{t_loop:.1f} | "
            f"{t_loop / t_fast:.1f}x | {t_ll:.3f} |")
    print()
  rows, have_sk = badge_rows(sizes, args.budget, args.sk_max, args.repeats)
  print(f"BADGE selection of {args.budget} rows (d = 128, C = 10), seconds:\n")
  print("| N | al_jax factorised | NumPy materialised | scikit-activeml Badge |")
  print("|---|---|---|---|")
  for n, t_ours, t_np, t_sk, extrap in rows:
    sk = "not installed" if not have_sk else f"{'~' if extrap else ''}{t_sk:.2f}"
    print(f"| {n:,} | {t_ours:.3f} | {t_np:.2f} | {sk} |")
  print("\n~ = extrapolated linearly from a prefix of the rows.")


if __name__ == "__main__":
  main()
