"""Score + select time and peak memory per strategy vs pool size, side by side with peers.

  python3 -m venv .venv_bench
  .venv_bench/bin/pip install -r benchmarks/requirements-speed.txt
  .venv_bench/bin/python benchmarks/speed.py --out benchmarks/results/speed.jsonl

Every library gets the same synthetic inputs of realistic shape, built from
one seed: embeddings [N, d] (a 50-component Gaussian mixture, d = 512), the
logits of a fixed linear head on them [N, C] (C = 10), and MC-dropout
log-probabilities [N, K, C] (K = 20: the logits plus per-network noise);
100 random rows are labelled. The forward passes that would produce these
are excluded for every library; al_jax runs each strategy's own score
function (through a stub model whose logits and out["pre_logits"] are the inputs) and its
own select, except the MC strategies, whose score is the reduction of the
[N, K, C] tensor (mc.mutual_information / mc.predictive_entropy) the
strategy applies to its MC samples.

Peers (benchmarks/requirements-speed.txt, never the library's requirements):
scikit-activeml 1.0.1 (UncertaintySampling, CoreSet, Badge, TypiClust,
ProbCover, and `batch_bald`, the function its BatchBALD class calls on the
ensemble's probabilities), baal 2.1 (BALD, BatchBALD, Entropy heuristics)
and batchbald_redux 2.0 (get_bald_batch, get_batchbald_batch). Classifier-
based scikit-activeml strategies get a classifier that returns the same
probabilities by table lookup (vectorised, a negligible cost).

Each measurement runs in a fresh subprocess; time is the best of --repeats
calls (one call when it takes over --max_seconds / 4). al_jax compiles ahead
of time (reported apart, never timed; host-side selects such as TypiClust's
get one untimed warm-up call); peak memory is the process's RSS high-water
mark above its RSS once the inputs exist and al_jax has compiled. A library
whose time on its previous case, scaled linearly in N and in the batch
size, exceeds --max_seconds is not run (shown as "skipped").
Prints one markdown table with the ratio peer time / al_jax time (> 1: al_jax
is faster); --out appends each measured row as a JSON line, and a rerun with
the same --out reuses them (an interrupted run resumes).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from benchmarks.kcenter_speed import make_data, pick_delta
from benchmarks.measure import peak_mb, reset_peak, rss_mb

# strategy -> (inputs, [(peer library, peer algorithm)])
CASES = {
    "least_confidence": ("logits", [("skactiveml", "UncertaintySampling(least_confident)")]),
    "margin": ("logits", [("skactiveml", "UncertaintySampling(margin_sampling)")]),
    "entropy": ("logits", [("skactiveml", "UncertaintySampling(entropy)")]),
    "bayesian_entropy": ("mc", [("baal", "Entropy")]),
    "bald": ("mc", [("baal", "BALD"), ("redux", "get_bald_batch")]),
    "batchbald": ("mc", [("baal", "BatchBALD"), ("redux", "get_batchbald_batch"),
                         ("skactiveml", "batch_bald")]),
    "coreset": ("emb", [("skactiveml", "CoreSet")]),
    "badge": ("emb", [("skactiveml", "Badge")]),
    "typiclust": ("emb", [("skactiveml", "TypiClust")]),
    "probcover": ("emb", [("skactiveml", "ProbCover")]),
}
NORMALISED = ("typiclust", "probcover")  # Both work on L2-normalised embeddings.


def make_inputs(n, d, c, k, labelled, normalise, seed=0):
  """Embeddings, head weights, logits, MC log-probs and the labelled mask."""
  emb, lab = make_data(n, d, labelled, seed=seed, normalize=normalise)
  rng = np.random.default_rng(seed + 1)
  w = (3 * rng.normal(size=(d, c)) / np.sqrt(d)).astype(np.float32)
  logits = emb @ w
  z = logits[:, None, :] + rng.normal(size=(n, k, c)).astype(np.float32)
  logp = z - z.max(-1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
  y = np.where(lab, rng.integers(0, c, n), -1)  # revealed labels of the labelled rows
  return types.SimpleNamespace(emb=emb, w=w, logits=logits, logp=logp, labelled=lab, y=y)


def softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def ours(name, data, budget, kw):
  """(zero-argument callable running al_jax's score + select -> ids, compile seconds)."""
  import jax
  import jax.numpy as jnp

  from al_jax import mc
  from al_jax.strategies import STRATEGIES
  from al_jax.strategies.base import PoolView
  n = len(data.labelled)
  pool = PoolView(jnp.arange(n, dtype=jnp.int32), jnp.ones(n, bool), jnp.asarray(data.labelled),
                  jnp.asarray(data.y, jnp.int32))
  w = jnp.asarray(data.w)
  stub = types.SimpleNamespace(  # The "model": the inputs are its outputs.
      apply=lambda p, r, x: (x, {"pre_logits": x, "stages": [x]}), head=lambda p, r, h: h @ w,
      num_classes=data.w.shape[1], embed_dim=data.w.shape[0])
  strat = STRATEGIES[name](stub, **kw)
  key = jax.random.key(0)
  kind = CASES[name][0]
  x = jnp.asarray({"logits": data.logits, "emb": data.emb, "mc": data.logp}[kind])
  if name in ("bald", "bayesian_entropy"):
    score = mc.mutual_information if name == "bald" else mc.predictive_entropy
  elif name == "batchbald":
    score = lambda lp: lp  # Its score hands the MC log-probs to select.
  else:
    score = lambda xb: strat.score(None, None, {"x": xb}, key)
  t0 = time.perf_counter()
  if strat.jit_select:  # Compiled ahead, so no warm-up run is needed.
    f = jax.jit(lambda x, pool: strat.select(score(x), pool, budget, key)[0])
    f = f.lower(x, pool).compile()
    return (lambda: np.asarray(jax.block_until_ready(f(x, pool)))), time.perf_counter() - t0
  s = jax.jit(score).lower(x).compile()
  run = lambda: np.asarray(strat.select(s(x), pool, budget, key)[0])
  run()  # Host-side selects jit their pieces on the first call.
  return run, time.perf_counter() - t0


class FixedProba:
  """A fitted-looking classifier whose predict_proba returns stored rows.

  Rows are found by their first feature (unique in the synthetic data) with
  a vectorised searchsorted, so the lookup costs O(N log N) in NumPy.
  """

  def __init__(self, x, probs):
    self.keys, self.order, self.probs = np.sort(x[:, 0]), np.argsort(x[:, 0]), probs

  def sklearn(self):
    from sklearn.base import BaseEstimator, ClassifierMixin
    outer = self

    class Fixed(ClassifierMixin, BaseEstimator):
      def fit(self, X, y, sample_weight=None):  # scikit-learn's argument names
        del X, y, sample_weight
        self.classes_ = np.arange(outer.probs.shape[1])
        return self

      def predict_proba(self, X):
        return outer.probs[outer.order[np.searchsorted(outer.keys, np.asarray(X)[:, 0])]]
    return Fixed()


def peer(lib, name, data, budget, args, delta):
  """A zero-argument callable running the peer's selection; returns ids."""
  n, c = data.logits.shape
  unl = np.flatnonzero(~data.labelled)
  if lib == "skactiveml":
    from skactiveml import pool as skp
    from skactiveml.classifier import SklearnClassifier
    y = np.where(data.labelled, data.y, np.nan).astype(np.float64)
    if name == "batchbald":
      probs_knc = np.exp(data.logp.astype(np.float64)).transpose(1, 0, 2).copy()

      def run():
        util = skp.batch_bald(probs_knc[:, unl], budget, n_MC_samples=args.m, random_state=0)
        return unl[np.nanargmax(util, axis=1)]
      return run
    if name in ("least_confidence", "margin", "entropy", "badge"):
      method = CASES[name][1][0][1].split("(")[-1].rstrip(")")
      x = (data.emb.astype(np.float64) if name == "badge" else
           np.arange(n, dtype=np.float64)[:, None])
      clf = SklearnClassifier(FixedProba(x, softmax(data.logits.astype(np.float64))).sklearn(),
                              classes=np.arange(c), missing_label=np.nan)
      qs = (skp.Badge(random_state=0) if name == "badge" else
            skp.UncertaintySampling(method=method, random_state=0))
      return lambda: qs.query(x, y, clf=clf, batch_size=budget)
    x = data.emb.astype(np.float64)
    qs = {"coreset": lambda: skp.CoreSet(random_state=0),
          "typiclust": lambda: skp.TypiClust(k=20, random_state=0),
          "probcover": lambda: skp.ProbCover(n_classes=c, deltas=[delta], random_state=0)}[name]()
    return lambda: qs.query(x, y, batch_size=budget)
  if lib == "baal":
    from baal.active import heuristics
    h = {"bald": lambda: heuristics.BALD(), "bayesian_entropy": lambda: heuristics.Entropy(),
         # baal's num_draw is label configurations per MC network: M / K gives
         # the same M configurations in all as al_jax and batchbald_redux.
         # Its BatchBALD starts from the BALD top-1 and then adds num_samples
         # points, and its ranking puts that first point last: num_samples =
         # b - 1 makes the top b of the ranking exactly its greedy batch.
         "batchbald": lambda: heuristics.BatchBALD(num_samples=max(budget - 1, 1),
                                                   num_draw=max(args.m // args.k, 1))}[name]()
    probs_nck = np.exp(data.logp[unl].astype(np.float64)).transpose(0, 2, 1).copy()  # [N, C, K]
    return lambda: unl[np.asarray(h(probs_nck))[:budget]]
  if lib == "redux":
    import torch
    from batchbald_redux import batchbald as rb
    torch.manual_seed(0)
    logp = torch.from_numpy(data.logp[unl].astype(np.float64))
    if name == "bald":
      return lambda: unl[np.asarray(rb.get_bald_batch(logp, budget).indices)]
    return lambda: unl[np.asarray(rb.get_batchbald_batch(logp, budget, args.m,
                                                          dtype=torch.double).indices)]
  raise ValueError(f"unknown peer library {lib!r}")


def worker(args) -> dict:
  """One (strategy, library, N, budget) measurement in this process."""
  name, lib = args.strategy, args.lib
  data = make_inputs(args.n, args.d, args.c, args.k, args.labelled, name in NORMALISED)
  kw = {}
  if name == "batchbald":
    kw = {"num_configs": args.m}
  if name == "probcover":
    kw = {"delta": args.delta}
  compile_s = 0.0
  if lib == "al_jax":
    run, compile_s = ours(name, data, args.budget, kw)
  else:
    run = peer(lib, name, data, args.budget, args, args.delta)
  out = {"strategy": name, "lib": lib, "n": args.n, "budget": args.budget}
  reset_peak()
  base = rss_mb()
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    ids = run()
    times.append(time.perf_counter() - t0)
    if times[-1] > args.max_seconds / 4:  # Slow: one run is enough.
      break
  out["seconds"] = min(times)
  out["compile_seconds"] = compile_s
  out["peak_extra_mb"] = max(peak_mb() - base, 0.0)
  ids = np.asarray(ids).reshape(-1)[:args.budget]
  out["ids_ok"] = bool(len(set(ids.tolist())) == args.budget and
                       not data.labelled[ids].any())
  if name == "batchbald" and out["ids_ok"]:  # Batch quality, the same measure for every library.
    from benchmarks.batchbald_quality import true_joint_mi
    out["joint_mi"] = true_joint_mi(data.logp, ids, args.mi_samples)
  return out


def run_case(args, name, lib, n, budget, delta):
  cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--strategy", name, "--lib", lib,
         "--n", str(n), "--budget", str(budget), "--delta", str(delta)]
  for f in ("d", "c", "k", "m", "labelled", "repeats", "max_seconds", "mi_samples"):
    cmd += [f"--{f}", str(getattr(args, f))]
  env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
  try:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                         timeout=args.max_seconds * 3 + 300)
  except subprocess.TimeoutExpired:
    return {"strategy": name, "lib": lib, "n": n, "budget": budget, "error": "timed out"}
  lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
  if res.returncode or not lines:
    tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
    return {"strategy": name, "lib": lib, "n": n, "budget": budget, "error": tail[:200]}
  return json.loads(lines[-1])


def budgets_for(name, args):
  return [int(b) for b in (args.mc_budgets if CASES[name][0] == "mc" else
                           str(args.budget)).split(",")]


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--strategy", default="entropy", help=argparse.SUPPRESS)
  p.add_argument("--lib", default="al_jax", help=argparse.SUPPRESS)
  p.add_argument("--n", type=int, default=1000, help=argparse.SUPPRESS)
  p.add_argument("--delta", type=float, default=0.0, help=argparse.SUPPRESS)
  p.add_argument("--strategies", default=",".join(CASES))
  p.add_argument("--libs", default="al_jax,skactiveml,baal,redux")
  p.add_argument("--ns", default="1000,10000,100000")
  p.add_argument("--budget", type=int, default=100)
  p.add_argument("--mc_budgets", default="10,100", help="batch sizes of the MC strategies")
  p.add_argument("--d", type=int, default=512)
  p.add_argument("--c", type=int, default=10)
  p.add_argument("--k", type=int, default=20)
  p.add_argument("--m", type=int, default=1000, help="BatchBALD sampled configurations")
  p.add_argument("--mi_samples", type=int, default=1_000_000,
                 help="Monte-Carlo draws for a BatchBALD batch's true joint MI")
  p.add_argument("--labelled", type=int, default=100)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--max_seconds", type=float, default=120.0)
  p.add_argument("--max_dense_gb", type=float, default=4.0,
                 help="skip scikit-activeml ProbCover when its N x N float64 distances are larger")
  p.add_argument("--out", default=None,
                 help="JSON lines of the measured rows; rerunning with the same file resumes")
  args = p.parse_args()
  if args.worker:
    print(json.dumps(worker(args)))
    return
  unknown = [s for s in args.strategies.split(",") if s not in CASES]
  if unknown:
    sys.exit(f"error: --strategies {unknown} have no speed case; known: {list(CASES)}")
  libs = args.libs.split(",")
  done = {}  # Rows of an earlier, interrupted run with the same --out are reused.
  if args.out and os.path.exists(args.out):
    with open(args.out) as f:
      for ln in f:
        r = json.loads(ln)
        done[(r["strategy"], r["lib"], r["n"], r["budget"])] = r
  rows = []
  for name in args.strategies.split(","):
    last = {}  # lib -> (N, budget, seconds) of its previous case, or "failed"
    for budget in budgets_for(name, args):
      for n in map(int, args.ns.split(",")):
        delta = 0.0
        if name == "probcover":
          delta = pick_delta(make_data(n, args.d, args.labelled, normalize=True)[0], 30.0)
        for lib in ["al_jax"] + [lb for lb, _ in CASES[name][1] if lb in libs]:
          row = {"strategy": name, "lib": lib, "n": n, "budget": budget}
          # Linear in N and in the batch (greedy selections take one pass per pick).
          prev = last.get(lib)
          est = prev[2] * n / prev[0] * budget / prev[1] if isinstance(prev, tuple) else 0.0
          if (name, lib, n, budget) in done:
            row = done[(name, lib, n, budget)]
            if "seconds" in row:
              last[lib] = (n, budget, row["seconds"])
          elif est > args.max_seconds or last.get(lib) == "failed":
            row["error"] = (f"skipped (estimated {est:.0f} s > --max_seconds)"
                            if est else "skipped (failed at a smaller N)")
          elif (lib == "skactiveml" and name == "probcover" and
                n * n * 8 / 2**30 > args.max_dense_gb):
            row["error"] = f"skipped (dense {n}x{n} float64 distances: {n * n * 8 / 2**30:.0f} GiB)"
          else:
            row = run_case(args, name, lib, n, budget, delta)
            last[lib] = (n, budget, row["seconds"]) if "seconds" in row else "failed"
          rows.append(row)
          print(json.dumps(row), file=sys.stderr, flush=True)
          if args.out and (name, lib, n, budget) not in done:
            with open(args.out, "a") as f:
              f.write(json.dumps(row) + "\n")
  print(table(rows, args))


def table(rows, args) -> str:
  import jax

  from al_jax.strategies import batchbald
  lines = [(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; jax {jax.__version__}, "
            f"d = {args.d}, C = {args.c}, K = {args.k}, BatchBALD M = {args.m} for every "
            f"library (baal num_draw = M / K), al_jax refining each pick on (shortlist, "
            f"configurations) = {batchbald.REFINE}; joint MI: true I(y_batch; w), "
            f"{args.mi_samples:,} Monte-Carlo draws, at most log K = {np.log(args.k):.5f}."), "",
           ("| strategy | N | batch | al_jax s (compile s) | al_jax MB | peer | peer s | peer MB | "
            "peer s / al_jax s | joint MI al_jax / peer |"),
           "|---|---|---|---|---|---|---|---|---|---|"]
  by = {(r["strategy"], r["n"], r["budget"], r["lib"]): r for r in rows}
  for (name, n, budget, lib), r in by.items():
    if lib != "al_jax":
      continue
    ours_s = r.get("seconds")
    head = (f"| {name} | {n:,} | {budget} | "
            + (f"{ours_s:.3f} ({r['compile_seconds']:.1f})" if ours_s is not None
               else r.get("error", "-"))
            + f" | {r.get('peak_extra_mb', float('nan')):.0f} |")
    if not r.get("ids_ok", True):
      head = head.replace(f"| {name} |", f"| {name} (BAD IDS) |")
    plist = [(lb, a) for lb, a in CASES[name][1] if (name, n, budget, lb) in by]
    # Five decimals: batches of 10 from [N, 20, 10] sit within ~0.002 nats of log K.
    mi = lambda row: f"{row['joint_mi']:.5f}" if "joint_mi" in row else "-"
    if not plist:
      lines.append(head + f" - | - | - | - | {mi(r)} |")
    for lb, algo in plist:
      q = by[(name, n, budget, lb)]
      if "seconds" in q:
        ratio = f"{q['seconds'] / ours_s:.1f}x" if ours_s else "-"
        lines.append(head + f" {lb} {algo} | {q['seconds']:.3f} | {q['peak_extra_mb']:.0f} | "
                     f"{ratio} | {mi(r)} / {mi(q)} |")
      else:
        lines.append(head + f" {lb} {algo} | {q.get('error', '-')} | - | - | - |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
