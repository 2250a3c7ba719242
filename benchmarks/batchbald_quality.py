"""BatchBALD batch quality: agreement with a float64 reference and the true joint MI.

  python benchmarks/batchbald_quality.py --n 5000 --keys 0,1,2,3,4
  python benchmarks/batchbald_quality.py --n 5000 --refine "()"   # the screen alone

Inputs: MC log-probabilities [N, K, C] of i.i.d. N(0, 2^2) logits (the
synthetic case of issue 17). The reference is the float64 NumPy BatchBALD of
benchmarks/batchbald_reference.py (exact joint entropies while C^(n-1) <=
--ref_exact, else --ref_final stratified samples); it prints each pick's lead
over the runner-up and that lead's standard error (a lead under ~3 standard
errors is a near-tie). For each key, al_jax picks a batch with --m and
--refine; the table shows how many leading picks equal the reference's, how
many picks the two batches share, and the batch's true joint mutual
information I(y_B; w) (`true_joint_mi`, --mc_samples draws, float64), a
measure that does not depend on either selection's estimator.
`num_configs` (M) and `refine` are the speed / quality knobs.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def iid_logp(n: int, k: int, c: int, seed: int = 0, scale: float = 2.0) -> np.ndarray:
  """[N, K, C] float32 log-softmax of i.i.d. normal logits (float64 softmax)."""
  z = np.random.default_rng(seed).normal(size=(n, k, c)) * scale
  z = z - z.max(-1, keepdims=True)
  return (z - np.log(np.exp(z).sum(-1, keepdims=True))).astype(np.float32)


def true_joint_mi(logp: np.ndarray, idx, num: int = 1_000_000, seed: int = 0,
                  chunk: int = 100_000) -> float:
  """I(y_idx; w) over the K networks, by Monte Carlo in float64.

  With w uniform over the K networks, I(y; w) = log K - E_y H(w | y): draws
  y from the mixture (network k(m) = m mod K, spread evenly; then each label
  from p_k, independent given k) and averages the entropy of the exact
  posterior p(k | y) ∝ prod_i p_k(y_i). This has the same mean as
  H(y) - sum_i E_k H(y_i | w) but a far smaller variance once the batch
  nearly identifies the network (its MI close to log K, as for 10 picks from
  [5,000, 20, 10]): the posterior entropies are then mostly near 0, where
  -log p(y) still varies by nats. Standard error: `true_joint_mi_se`.
  """
  return _posterior_entropies(logp, idx, num, seed, chunk)[0]


def true_joint_mi_se(logp: np.ndarray, idx, num: int = 1_000_000, seed: int = 0,
                     chunk: int = 100_000) -> float:
  """The Monte-Carlo standard error of `true_joint_mi` with the same arguments."""
  return _posterior_entropies(logp, idx, num, seed, chunk)[1]


def _posterior_entropies(logp, idx, num, seed, chunk):
  p = np.exp(np.asarray(logp, np.float64)[np.asarray(idx)])   # [b, K, C]
  b, k, c = p.shape
  logp64 = np.log(np.maximum(p, 1e-300))
  rng = np.random.default_rng(seed)
  total, total_sq = 0.0, 0.0
  for start in range(0, num, chunk):
    m = min(chunk, num - start)
    net = (start + np.arange(m)) % k
    log_pk = np.zeros((m, k))
    for i in range(b):
      cdf = np.cumsum(p[i, net], -1)
      y = np.minimum((rng.random((m, 1)) > cdf).sum(-1), c - 1)
      log_pk += logp64[i][:, y].T
    log_post = log_pk - np.logaddexp.reduce(log_pk, axis=1, keepdims=True)
    h = -np.sum(np.exp(log_post) * log_post, axis=1)
    total += h.sum()
    total_sq += (h ** 2).sum()
  mean = total / num
  return np.log(k) - mean, float(np.sqrt(max(total_sq / num - mean ** 2, 0.0) / num))


def select(logp: np.ndarray, budget: int, num_configs: int, key: int, **kw) -> np.ndarray:
  """al_jax's BatchBALD on the whole pool (ids = positions + 10^6, mapped back).

  kw: further batchbald_select keywords (num_final_configs, shortlist).
  """
  import jax
  import jax.numpy as jnp
  from al_jax.strategies import batchbald
  from al_jax.strategies.base import PoolView
  n = len(logp)
  pool = PoolView(jnp.arange(n, dtype=jnp.int32) + 10**6, jnp.ones(n, bool),
                  jnp.zeros(n, bool), jnp.full(n, -1, jnp.int32))
  ids, _ = jax.jit(lambda l, kk: batchbald.batchbald_select(
      l, pool, budget, kk, num_configs=num_configs, **kw))(jnp.asarray(logp), jax.random.key(key))
  return np.asarray(ids) - 10**6


def main():
  import ast

  from benchmarks.batchbald_reference import reference_select
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--n", type=int, default=5000)
  p.add_argument("--k", type=int, default=20)
  p.add_argument("--c", type=int, default=10)
  p.add_argument("--budget", type=int, default=10)
  p.add_argument("--m", type=int, default=1000, help="al_jax num_configs")
  p.add_argument("--refine", default=None, help="al_jax refine levels (Python literal)")
  p.add_argument("--keys", default="0,1,2,3,4")
  p.add_argument("--ref_seed", type=int, default=0)
  p.add_argument("--ref_final", type=int, default=200_000)
  p.add_argument("--ref_exact", type=int, default=100_000)
  p.add_argument("--mc_samples", type=int, default=1_000_000)
  args = p.parse_args()
  kw = {} if args.refine is None else {"refine": ast.literal_eval(args.refine)}
  logp = iid_logp(args.n, args.k, args.c)
  t0 = time.perf_counter()
  ref, info = reference_select(logp, args.budget, seed=args.ref_seed, num_screen=2000,
                               num_final=args.ref_final, exact_max=args.ref_exact, shortlist=48)
  ref_mi, ref_se = true_joint_mi(logp, ref, args.mc_samples), true_joint_mi_se(
      logp, ref, args.mc_samples)
  print(f"N = {args.n}, K = {args.k}, C = {args.c}, batch {args.budget}; reference (seed "
        f"{args.ref_seed}, {time.perf_counter() - t0:.0f} s): true joint MI {ref_mi:.5f} "
        f"± {ref_se:.5f}; ceiling log K = {np.log(args.k):.5f}")
  print("reference leads (nats): " + ", ".join(
      f"{i['lead']:.5f}" + ("" if i["exact"] else f" (se {i['se']:.5f})") for i in info) + "\n")
  print("| M | refine | key | seconds | leading picks equal | picks shared | true joint MI |")
  print("|---|---|---|---|---|---|---|")
  for key in map(int, args.keys.split(",")):
    t0 = time.perf_counter()
    ids = select(logp, args.budget, args.m, key, **kw)
    sec = time.perf_counter() - t0
    lead = next((i for i in range(args.budget) if ids[i] != ref[i]), args.budget)
    shared = len(set(ids.tolist()) & set(ref.tolist()))
    print(f"| {args.m} | {args.refine or 'default'} | {key} | {sec:.1f} | {lead} | "
          f"{shared} / {args.budget} | {true_joint_mi(logp, ids, args.mc_samples):.5f} |",
          flush=True)


if __name__ == "__main__":
  main()
