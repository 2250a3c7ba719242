"""Speed and peak memory of k-center greedy, TypiClust and ProbCover against scikit-activeml.

  python3 -m venv .venv_bench_diversity
  .venv_bench_diversity/bin/pip install -r requirements.txt \
      -r benchmarks/requirements-diversity.txt
  .venv_bench_diversity/bin/python benchmarks/kcenter_speed.py --out /tmp/kcenter_speed.json

Every measurement runs in a fresh subprocess on the same synthetic arrays (a
seeded Gaussian mixture, float32 for JAX, float64 for scikit-activeml as it
converts), so peak memory is that process's peak RSS above its RSS once the
data exist (for JAX: once compiled; the high-water mark is reset after
compilation). JAX times exclude compilation (reported apart).
The memory-bandwidth lower bound of k-center greedy is k picks x the bytes
one pick must stream (the N x d embeddings once, plus four O(N) vectors)
divided by the bandwidth of a streaming row-sum measured on the same array.
Prints a markdown table; --out also writes the raw rows as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from benchmarks.measure import peak_mb, reset_peak, rss_mb


def make_data(n, d, n_lab, seed=0, normalize=False):
  """Gaussian mixture of 50 components; the first n_lab rows of a random
  order are labelled."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(50, d)).astype(np.float32)
  x = centres[rng.integers(0, 50, n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
  if normalize:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
  lab = np.zeros(n, bool)
  lab[rng.permutation(n)[:n_lab]] = True
  return x, lab


def pick_delta(x, degree, seed=0):
  """A radius giving about `degree` neighbours per row (from 500 rows)."""
  rng = np.random.default_rng(seed)
  s = x[rng.choice(len(x), 500, replace=False)].astype(np.float64)
  d = np.sqrt(np.maximum((s * s).sum(1)[:, None] + (x * x).sum(1)[None] - 2 * s @ x.T, 0))
  return float(np.quantile(d, min(degree / len(x), 1.0)))


def worker(a) -> dict:
  """One measurement; returns a JSON-able dict."""
  normalize = a.algo in ("typiclust", "probcover")
  x, lab = make_data(a.n, a.d, a.labelled, normalize=normalize)
  out = {"algo": a.algo, "impl": a.impl, "n": a.n, "d": a.d}
  if a.impl == "skactiveml":
    x = x.astype(np.float64)
    y = np.where(lab, 0.0, np.nan)
    base = rss_mb()
    reset_peak()
    if a.algo == "kcenter":
      from skactiveml.pool._core_set import k_greedy_center
      t0 = time.perf_counter()
      idx, _ = k_greedy_center(x, y, batch_size=a.k, random_state=0)
      out["seconds"] = time.perf_counter() - t0
      out["picks"] = np.asarray(idx).tolist()
    elif a.algo == "typiclust":
      from skactiveml.pool import TypiClust
      t0 = time.perf_counter()
      idx = TypiClust(k=20, random_state=0).query(x, y, batch_size=a.budget)
      out["seconds"] = time.perf_counter() - t0
    else:
      from skactiveml.pool import ProbCover
      t0 = time.perf_counter()
      idx = ProbCover(n_classes=10, deltas=[a.delta], random_state=0).query(
          x, y, batch_size=a.budget)
      out["seconds"] = time.perf_counter() - t0
    out["peak_extra_mb"] = peak_mb() - base
    return out

  import jax
  import jax.numpy as jnp

  from al_jax.kernels import kcenter
  from al_jax.strategies import probcover, typiclust
  from al_jax.strategies.base import PoolView
  emb, centres = jnp.asarray(x), jnp.asarray(lab)
  jax.block_until_ready(emb)
  if a.algo == "kcenter":
    # Bandwidth: a jitted row-sum streams the same N x d array.
    rowsum = jax.jit(lambda e: jnp.sum(e, 1)).lower(emb).compile()
    jax.block_until_ready(rowsum(emb))
    ts = []
    for _ in range(5):
      t0 = time.perf_counter()
      jax.block_until_ready(rowsum(emb))
      ts.append(time.perf_counter() - t0)
    out["bandwidth_gbs"] = x.nbytes / min(ts) / 1e9
    out["bytes_per_pick"] = x.nbytes + 4 * 4 * a.n
    t0 = time.perf_counter()
    fn = jax.jit(kcenter.k_center_greedy, static_argnums=(3, 5)).lower(
        emb, centres, ~centres, a.k, jax.random.key(0), 256).compile()
    out["compile_seconds"] = time.perf_counter() - t0
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    picks, _ = jax.block_until_ready(fn(emb, centres, ~centres, jax.random.key(0)))
    out["seconds"] = time.perf_counter() - t0
    out["picks"] = np.asarray(picks).tolist()
  else:
    pool = PoolView(jnp.arange(a.n, dtype=jnp.int32), jnp.ones(a.n, bool), centres,
                    jnp.full(a.n, -1, jnp.int32))
    if a.algo == "typiclust":
      strat = typiclust.typiclust(None, max_clusters=10**9)
    else:
      strat = probcover.probcover(None, delta=a.delta, max_edges=10**9)
    t0 = time.perf_counter()
    strat.select(emb, pool, a.budget, jax.random.key(0))  # Compiles.
    out["compile_seconds"] = time.perf_counter() - t0
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    strat.select(emb, pool, a.budget, jax.random.key(0))
    out["seconds"] = time.perf_counter() - t0
    out["compile_seconds"] -= out["seconds"]
  out["peak_extra_mb"] = peak_mb() - base
  return out


def run_worker(args, algo, impl, n, extra=()):
  cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--algo", algo, "--impl", impl,
         "--n", str(n), "--d", str(args.d), "--k", str(args.k), "--labelled", str(args.labelled),
         "--budget", str(args.budget), *extra]
  env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
  res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout,
                       check=False)
  if res.returncode:
    return {"algo": algo, "impl": impl, "n": n, "error": res.stderr.strip().splitlines()[-1:]}
  return json.loads(res.stdout.strip().splitlines()[-1])


def prefix_agreement(a, b):
  k = 0
  while k < min(len(a), len(b)) and a[k] == b[k]:
    k += 1
  return k


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--algo", default="kcenter")
  p.add_argument("--impl", default="jax")
  p.add_argument("--n", type=int, default=10_000)
  p.add_argument("--ns", default="10000,50000,200000", help="N for k-center greedy")
  p.add_argument("--ns_cluster", default="5000,10000,20000", help="N for TypiClust/ProbCover")
  p.add_argument("--d", type=int, default=512)
  p.add_argument("--k", type=int, default=1000, help="k-center picks")
  p.add_argument("--labelled", type=int, default=100)
  p.add_argument("--budget", type=int, default=100, help="TypiClust/ProbCover picks")
  p.add_argument("--degree", type=float, default=30.0, help="ProbCover mean ball size")
  p.add_argument("--delta", type=float, default=0.0)
  p.add_argument("--algos", default="kcenter,typiclust,probcover")
  p.add_argument("--impls", default="jax,skactiveml")
  p.add_argument("--max_dense_gb", type=float, default=6.0,
                 help="skip scikit-activeml ProbCover when its N x N float64 matrix is larger")
  p.add_argument("--timeout", type=int, default=1800)
  p.add_argument("--out", default=None)
  args = p.parse_args()
  if args.worker:
    print(json.dumps(worker(args)))
    return

  rows = []
  for algo in args.algos.split(","):
    ns = args.ns if algo == "kcenter" else args.ns_cluster
    for n in map(int, ns.split(",")):
      extra = ()
      if algo == "probcover":
        x, _ = make_data(n, args.d, args.labelled, normalize=True)
        extra = ("--delta", str(pick_delta(x, args.degree)))
        del x
      for impl in args.impls.split(","):
        if algo == "probcover" and impl == "skactiveml" and n * n * 8 / 2**30 > args.max_dense_gb:
          rows.append({"algo": algo, "impl": impl, "n": n,
                       "error": (f"skipped: dense {n}x{n} float64 distance matrix "
                                 f"({n * n * 8 / 2**30:.1f} GiB)")})
          continue
        r = run_worker(args, algo, impl, n, extra)
        print(json.dumps({k: v for k, v in r.items() if k != "picks"}), flush=True)
        rows.append(r)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f)
  print(table(rows, args))


def table(rows, args) -> str:
  by = {(r["algo"], r["n"], r["impl"]): r for r in rows}
  lines = [("| algorithm | N | al_jax s | al_jax peak MB | scikit-activeml s | "
            "scikit-activeml peak MB | speed-up | bandwidth bound s | al_jax / bound |"),
           "|---|---|---|---|---|---|---|---|---|"]
  for (algo, n, impl), r in by.items():
    if impl != "jax":
      continue
    s = by.get((algo, n, "skactiveml"), {})
    ours, theirs = r.get("seconds"), s.get("seconds")
    bound = (args.k * r["bytes_per_pick"] / (r["bandwidth_gbs"] * 1e9)
             if "bandwidth_gbs" in r else None)
    fmt = lambda v, f="{:.2f}": f.format(v) if v is not None else "-"
    name = {"kcenter": f"k-center greedy (k={args.k})", "typiclust": f"TypiClust (b={args.budget})",
            "probcover": f"ProbCover (b={args.budget})"}[algo]
    sk = fmt(theirs) if theirs is not None else s.get("error", ["-"])
    sk = sk if isinstance(sk, str) else " ".join(sk)
    agree = ""
    if "picks" in r and "picks" in s:
      agree = f" (first {prefix_agreement(r['picks'], s['picks'])} picks equal)"
    lines.append(
        f"| {name} | {n:,} | {fmt(ours)} | {fmt(r.get('peak_extra_mb'), '{:.0f}')} | {sk}{agree} | "
        f"{fmt(s.get('peak_extra_mb'), '{:.0f}')} | "
        f"{fmt(theirs / ours if ours and theirs else None, '{:.1f}x')} | {fmt(bound)} | "
        f"{fmt(ours / bound if ours and bound else None, '{:.1f}x')} |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
