"""BALD / BatchBALD selection time and memory: al_jax vs baal vs batchbald_redux.

All libraries get the same [N, K, C] MC log-probabilities (random logits,
seed 0). Each case runs in a fresh subprocess so its peak resident memory
(ru_maxrss) is its own; we report the peak minus the RSS right after the
tensor was built, i.e. the selection's extra memory.

  # al_jax only (main venv):
  python benchmarks/bald_speed.py --libs jax
  # all three (baal and batchbald_redux need torch: benchmarks/requirements-bayesian.txt):
  python benchmarks/bald_speed.py --libs jax --out /tmp/speed_jax.json
  /work/venv_bench_bayesian/bin/python benchmarks/bald_speed.py --libs redux,baal \
      --out /tmp/speed_torch.json

Times are the median of `--repeats` runs after one warm-up run (BatchBALD:
the single first run); al_jax's jit compilation is timed separately
(compile_s) and excluded.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def make_logp(n, k, c, seed=0):
  rng = np.random.default_rng(seed)
  z = (rng.normal(size=(n, k, c)) * 2).astype(np.float32)
  z -= z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, repeats):
  t0 = time.perf_counter()
  first = fn()
  warm = time.perf_counter() - t0
  out, times = first, []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t0)
  return first, out, warm, statistics.median(times) if times else warm


def run_case(lib, algo, n, k, c, b, m, repeats):
  """Runs one case in this process; returns a result dict."""
  logp = make_logp(n, k, c)
  base = rss_mb()
  if lib == "jax":
    import jax
    import jax.numpy as jnp
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from al_jax.strategies import batchbald  # Before selection: import order.
    from al_jax import mc, selection
    from al_jax.strategies.base import PoolView
    pool = PoolView(jnp.arange(n, dtype=jnp.int32), jnp.ones(n, bool), jnp.zeros(n, bool),
                    jnp.full(n, -1, jnp.int32))
    x = jnp.asarray(logp)
    base = rss_mb()
    if algo == "bald":
      f = jax.jit(lambda l, p: selection.masked_top_k(mc.mutual_information(l), p, b))
    else:
      f = jax.jit(lambda l, p: batchbald.batchbald_select(l, p, b, jax.random.key(0),
                                                          num_configs=m))
    t0 = time.perf_counter()
    f = f.lower(x, pool).compile()
    compile_s = time.perf_counter() - t0
    run = lambda: [np.asarray(a) for a in jax.block_until_ready(f(x, pool))]
    first, out, warm, t = _timed(run, repeats)
    ids = out[0]
  elif lib == "redux":
    import torch
    from batchbald_redux import batchbald as rb
    torch.manual_seed(0)
    x = torch.from_numpy(logp)
    base = rss_mb()
    if algo == "bald":
      run = lambda: rb.get_bald_batch(x, b)
    else:
      run = lambda: rb.get_batchbald_batch(x, b, m, dtype=torch.double)
    first, out, warm, t = _timed(run, repeats)
    ids = np.asarray(out.indices)
  elif lib == "baal":
    import torch
    from baal.active import heuristics
    torch.manual_seed(0)
    # baal wants probabilities laid out [N, C, K].
    probs = np.exp(logp).transpose(0, 2, 1).copy()
    base = rss_mb()
    if algo == "bald":
      h = heuristics.BALD()
    else:
      h = heuristics.BatchBALD(num_samples=b, num_draw=m)
    run = lambda: h(probs)[:b]
    first, out, warm, t = _timed(run, repeats)
    ids = np.asarray(out)
  else:
    raise ValueError(lib)
  return {"lib": lib, "algo": algo, "n": n, "k": k, "c": c, "b": b, "m": m,
          "first_s": warm, "compile_s": compile_s if lib == "jax" else 0.0, "time_s": t, "extra_mb": rss_mb() - base,
          "ids": [int(i) for i in ids[:b]]}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--libs", default="jax")
  ap.add_argument("--ns", default="1000,10000,100000")
  ap.add_argument("--batches", default="10,100")
  ap.add_argument("--k", type=int, default=20)
  ap.add_argument("--c", type=int, default=10)
  ap.add_argument("--m", type=int, default=1000, help="BatchBALD configurations")
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--max_seconds", type=float, default=300,
                  help="skip larger N for a lib/algo/batch once one case took longer")
  ap.add_argument("--out", default=None)
  ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.case:  # Child process: one case, JSON on stdout.
    lib, algo, n, b = args.case.split(":")
    r = run_case(lib, algo, int(n), args.k, args.c, int(b), args.m, args.repeats)
    print("RESULT " + json.dumps(r))
    return
  results = []
  for lib in args.libs.split(","):
    for algo in ("bald", "batchbald"):
      for b in map(int, args.batches.split(",")):
        for n in map(int, args.ns.split(",")):
          cmd = [sys.executable, __file__, "--case", f"{lib}:{algo}:{n}:{b}", "--k", str(args.k),
                 "--c", str(args.c), "--m", str(args.m), "--repeats",
                 str(args.repeats if algo == "bald" else 0)]
          t0 = time.perf_counter()
          try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=args.max_seconds * 3)
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
              print(f"{lib} {algo} n={n} b={b}: failed\n{p.stderr[-2000:]}", flush=True)
              break
            r = json.loads(line[0][7:])
          except subprocess.TimeoutExpired:
            print(f"{lib} {algo} n={n} b={b}: timed out", flush=True)
            results.append({"lib": lib, "algo": algo, "n": n, "b": b, "timeout_s":
                            args.max_seconds * 3})
            break
          results.append(r)
          print(f"{lib:6s} {algo:9s} N={n:6d} b={b:3d}: {r['time_s']:8.3f} s "
                f"(compile {r['compile_s']:.2f} s), +{r['extra_mb']:.0f} MB", flush=True)
          if time.perf_counter() - t0 > args.max_seconds:
            break
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
