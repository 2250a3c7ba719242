"""Full-network per-example gradient speed: layer taps vs vmap(grad) vs a
per-example loop vs PyTorch torch.func, and ISAL's dot product; plus BADGE
selection.

  nice python benchmarks/gradient_speed.py --n 10000

One run prints the markdown tables of benchmarks/README.md ("Per-example
gradient strategies: speed"). Each (model, score, method) cell runs in its
own subprocess, so its peak memory is that process's peak resident set
(ru_maxrss, which includes the framework's own ~0.3-0.5 GB), and one method's
allocations never count for another.

Models (eval mode, 28x28x1 random inputs, 10 classes):
  mlp  784-256-128-10 (235,146 parameters);
  cnn  the Gal et al. MNIST CNN: conv 4x4x32 - conv 4x4x32 - maxpool 2 -
       dense 128 - head (al_jax/models/cnn.py; PyTorch: the same layers).
Scores: EGL = sum_c p_c ||grad CE(x, c)||, all C classes; GraNd =
||grad CE(x, yhat)||; ISAL = grad CE(x, yhat) . v for a fixed v.
BADGE selection (--badge_sizes, as before): factorised k-means++ vs NumPy on
materialised embeddings vs scikit-activeml's Badge.
Methods:
  taps        al_jax's layer taps (per_example.tap_*), score batches of
              --batch rows;
  vmap(grad)  al_jax's reference, vmap over examples (and classes) with the
              norm inside, microbatches of 16 by lax.map, score batches of
              --batch rows; ISAL: one jax.jvp of the batch's losses (today's
              default);
  loop        one jitted call per example (EGL: vmap over its C classes);
  torch.func  torch.func.vmap(torch.func.grad(...)) over chunks of
              --torch_chunk rows (EGL: vmap over classes inside), norms from
              the per-example gradients; torch from
              benchmarks/requirements-gradient.txt.
GraNd's labels are the predictions yhat: the taps take them from their own
forward pass (tap_grad_norms with y=None), the other methods from a separate
forward pass or inside their per-example call.
Examples/s after one warm-up call (wall clock; the last column compares
process CPU time, which other jobs on a shared machine disturb less); slow
methods are timed on the first
--max_rows (per method) rows of the N and marked ~ (their rate does not
depend on N: every method works in fixed-size batches).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

C = 10


def _peak_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------- al_jax side


def _jax_cell(model, score, method, n, batch):
  import jax
  import jax.numpy as jnp

  from al_jax import models, per_example

  kw = dict(hidden=(256, 128)) if model == "mlp" else {}
  fns = models.build(model, (28, 28, 1), C, **kw)
  params, rest = fns.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (n, 28, 28, 1))
  v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(2), a.shape, a.dtype), params)

  def yhat(p, xb):
    return jnp.argmax(fns.apply(p, rest, xb)[0], -1)

  def batch_fn(p, xb):
    if method == "taps":
      if score == "egl":
        norms, probs = per_example.tap_class_grad_norms(fns, p, rest, xb, with_probs=True)
        return jnp.sum(probs * norms, -1)
      if score == "grand":  # yhat from the taps' own forward pass (y=None)
        return per_example.tap_grad_norms(fns, p, rest, xb)
      return per_example.tap_loss_dot(fns, p, rest, xb, None, v)  # yhat from the taps
    if score == "egl":
      probs = jax.nn.softmax(fns.apply(p, rest, xb)[0])
      return jnp.sum(probs * per_example.class_grad_norms(fns, p, rest, xb, 16), -1)
    if score == "grand":
      return per_example.grad_norms(fns, p, rest, xb, yhat(p, xb), 16)
    return per_example.loss_dot(fns, p, rest, xb, yhat(p, xb), v)

  if method == "loop":
    grad = jax.grad(per_example.example_loss(fns))

    @jax.jit
    def one(p, xi):
      logits = fns.apply(p, rest, xi[None])[0][0]
      if score == "egl":
        norms = jax.vmap(lambda c: jnp.sqrt(per_example.tree_sq_norm(grad(p, rest, xi, c))))(
            jnp.arange(C))
        return jnp.sum(jax.nn.softmax(logits) * norms)
      return jnp.sqrt(per_example.tree_sq_norm(grad(p, rest, xi, jnp.argmax(logits))))

    run = lambda: [one(params, x[i]) for i in range(n)]
  else:
    b = min(batch, n)
    if n % b:
      raise ValueError(f"rows {n} not a multiple of the score batch {b}")
    fn = jax.jit(lambda p, x: jax.lax.map(lambda xb: batch_fn(p, xb),
                                          x.reshape((-1, b) + x.shape[1:])).reshape(-1))
    run = lambda: fn(params, x)
  jax.block_until_ready(run() if method != "loop" else one(params, x[0]))
  t, c = time.perf_counter(), time.process_time()
  jax.block_until_ready(run())
  return time.perf_counter() - t, time.process_time() - c


# ----------------------------------------------------------------- PyTorch side


def _torch_model(model):
  import torch
  from torch import nn

  if model == "mlp":
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, C))
  return nn.Sequential(nn.Conv2d(1, 32, 4), nn.ReLU(), nn.Conv2d(32, 32, 4), nn.ReLU(),
                       nn.MaxPool2d(2), nn.Flatten(), nn.Linear(11 * 11 * 32, 128), nn.ReLU(),
                       nn.Linear(128, C)).to(torch.float32)


def _torch_cell(model, score, n, chunk):
  import torch
  from torch.func import functional_call, grad, vmap

  torch.manual_seed(0)
  net = _torch_model(model).eval()
  params = {k: p.detach() for k, p in net.named_parameters()}
  x = torch.randn(n, 1, 28, 28)

  def loss(p, xi, c):
    logits = functional_call(net, p, (xi[None],))[0]
    return torch.nn.functional.cross_entropy(logits[None], c[None])

  g = grad(loss)

  def sq(gs):
    return sum(t.pow(2).flatten(1).sum(1) for t in gs.values())

  classes = torch.arange(C)

  def chunk_scores(xb):
    with torch.no_grad():
      probs = torch.softmax(net(xb), -1)
    if score == "egl":
      # [B, C] norms: vmap over examples of vmap over classes.
      per = vmap(vmap(g, in_dims=(None, None, 0)), in_dims=(None, 0, None))(params, xb, classes)
      norms = sum(t.pow(2).flatten(2).sum(2) for t in per.values()).sqrt()
      return (probs * norms).sum(-1)
    yhat = probs.argmax(-1)
    return sq(vmap(g, in_dims=(None, 0, 0))(params, xb, yhat)).sqrt()

  run = lambda: torch.cat([chunk_scores(x[i:i + chunk]) for i in range(0, n, chunk)])
  chunk_scores(x[:chunk])  # warm-up
  t, c = time.perf_counter(), time.process_time()
  run()
  return time.perf_counter() - t, time.process_time() - c


# ----------------------------------------------------------------- BADGE selection


def best_time(fn, repeats):
  import jax
  jax.block_until_ready(fn())  # compile / warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return min(times)


def np_kmeans_pp(g, budget, rng):
  """The reference-style seeding on materialised embeddings (float32)."""
  import numpy as np
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
  import jax
  import jax.numpy as jnp
  import numpy as np

  from al_jax.strategies import gradient
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
  import numpy as np
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


# ----------------------------------------------------------------- driver


def _cell_main(args):
  model, score, method, n = args.cell.split(":")
  n = int(n)
  if method == "torch.func":
    secs, cpu = _torch_cell(model, score, n, args.torch_chunk)
  else:
    secs, cpu = _jax_cell(model, score, method, n, args.batch)
  print(json.dumps({"secs": secs, "cpu_secs": cpu, "rows": n, "peak_mb": _peak_mb()}))


def _run_cell(model, score, method, rows, args):
  cmd = [sys.executable, os.path.abspath(__file__), "--cell", f"{model}:{score}:{method}:{rows}",
         "--batch", str(args.batch), "--torch_chunk", str(args.torch_chunk)]
  out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
  if out.returncode:
    return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--n", type=int, default=10000, help="pool rows N")
  ap.add_argument("--models", default="mlp,cnn")
  ap.add_argument("--scores", default="egl,grand,isal")
  ap.add_argument("--batch", type=int, default=500, help="score batch (rows)")
  ap.add_argument("--torch_chunk", type=int, default=50)
  ap.add_argument("--max_rows", default="vmap(grad)=1000,loop=200,torch.func=1000,"
                  "cnn/taps=1000,cnn/vmap(grad)=500,cnn/loop=100,cnn/torch.func=500",
                  help="rows actually timed per method or model/method (rates are per "
                  "example); unlisted: all N")
  ap.add_argument("--badge_sizes", default="",
                  help="also time BADGE selection at these N (comma list; needs "
                  "scikit-activeml for its column)")
  ap.add_argument("--budget", type=int, default=100)
  ap.add_argument("--sk_max", type=int, default=10000)
  ap.add_argument("--cell", default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.cell:
    return _cell_main(args)
  max_rows = dict(kv.split("=") for kv in args.max_rows.split(","))
  try:
    import torch
    have_torch = f"torch {torch.__version__}"
  except ImportError:
    have_torch = None
  import jax
  load = os.getloadavg()
  print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{jax.devices()[0].platform}; jax {jax.__version__}; {have_torch or 'torch not installed'};"
        f" load average at start {load[0]:.1f}\n")
  print(f"Examples per second over N = {args.n:,} pool rows (score batch {args.batch}); "
        "peak resident memory of the process in MB in brackets; ~ = timed on the first rows "
        "only (count given).\n")
  methods = ["taps", "vmap(grad)", "loop", "torch.func"]
  print("| model | score | " + " | ".join(methods) +
        " | taps / vmap(grad) | taps / torch.func | taps / vmap(grad), CPU time |")
  print("|---|---|" + "---|" * (len(methods) + 3))
  for model in args.models.split(","):
    for score in args.scores.split(","):
      cells = {}
      for m in methods:
        if score == "isal" and m in ("loop", "torch.func"):
          continue  # ISAL: taps vs today's single jvp only
        if m == "torch.func" and not have_torch:
          continue
        rows = min(args.n, int(max_rows.get(f"{model}/{m}", max_rows.get(m, args.n))))
        if m not in ("loop", "torch.func"):
          rows = max(args.batch, rows - rows % args.batch)
        r = _run_cell(model, score, "vmap" if m == "vmap(grad)" else m, rows, args)
        cells[m] = r
        print(f"  {model} {score} {m}: {r}", file=sys.stderr, flush=True)

      def fmt(m):
        r = cells.get(m)
        if r is None:
          return "-"
        if "error" in r:
          return f"error: {r['error'][:40]}"
        mark = f"~({r['rows']:,}) " if r["rows"] < args.n else ""
        return f"{mark}{r['rows'] / r['secs']:,.0f} [{r['peak_mb']:,.0f}]"

      def ratio(a, b, key="secs"):
        ra, rb = cells.get(a), cells.get(b)
        if not ra or not rb or "error" in ra or "error" in rb:
          return "-"
        return f"{(ra['rows'] / ra[key]) / (rb['rows'] / rb[key]):.1f}x"

      label = "ISAL dot (vmap(grad) column: jvp)" if score == "isal" else score.upper()
      if score == "grand":
        label = "GraNd"
      print(f"| {model} | {label} | " + " | ".join(fmt(m) for m in methods) +
            f" | {ratio('taps', 'vmap(grad)')} | {ratio('taps', 'torch.func')}"
            f" | {ratio('taps', 'vmap(grad)', 'cpu_secs')} |", flush=True)
  if args.badge_sizes:
    sizes = [int(v) for v in args.badge_sizes.split(",")]
    rows, have_sk = badge_rows(sizes, args.budget, args.sk_max, 1)
    print(f"\nBADGE selection of {args.budget} rows (d = 128, C = 10), seconds:\n")
    print("| N | al_jax factorised | NumPy materialised | scikit-activeml Badge |")
    print("|---|---|---|---|")
    for n, t_ours, t_np, t_sk, extrap in rows:
      sk = "not installed" if not have_sk else f"{'~' if extrap else ''}{t_sk:.2f}"
      print(f"| {n:,} | {t_ours:.3f} | {t_np:.2f} | {sk} |")
  print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
