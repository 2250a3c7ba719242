"""Pool scoring + coreset selection on 1, 2, 4, 8 devices: same ids, and the time.

On this CPU machine the devices are fake (XLA_FLAGS splits the host), so the
table checks correctness under sharding, not speed: all "devices" share the
same cores. On a GPU/TPU host the same script times real devices.

  python benchmarks/scaling.py                       # 8 fake CPU devices
  python benchmarks/scaling.py --n 1000000 --d 512 --budget 1000 --devices 1   # one GPU

Pool: N random rows of dimension d pushed through a 2-layer MLP (the
"model"); score = penultimate embeddings (the coreset score), select =
k-center greedy with 1% of the pool labelled as initial centres.
"""

import argparse
import os
import sys
import time

# Splits the host CPU into 8 fake devices; has no effect on GPU/TPU devices.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from al_jax import models, sharding, strategies  # noqa: E402
from al_jax.strategies.base import PoolView  # noqa: E402


def run(n, d, budget, batch, num_devices, x_host, lab_host):
  """Scores and selects on a mesh of `num_devices`; returns (ids, score s, select s)."""
  mesh = sharding.make_mesh([("data", num_devices)])
  fns = models.build("mlp", (d,), 10, hidden=(256, 128))
  params, rest = fns.init(jax.random.key(0))
  strat = strategies.get("coreset", fns)
  x = sharding.shard_rows(mesh, x_host)
  pool = PoolView(*(sharding.shard_rows(mesh, a) for a in (
      np.arange(n, dtype=np.int32), np.ones(n, bool), lab_host,
      np.where(lab_host, 0, -1).astype(np.int32))))
  key = jax.random.key(1)
  score = jax.jit(lambda p, r, xx: sharding.chunked_map(
      lambda b: strat.score(p, r, {"x": b}, key), xx, batch, mesh))
  select = jax.jit(strat.select, static_argnums=2)
  feats = jax.block_until_ready(score(params, rest, x))  # compile + warm-up
  jax.block_until_ready(select(feats, pool, budget, key))
  t0 = time.perf_counter()
  feats = jax.block_until_ready(score(params, rest, x))
  t_score = time.perf_counter() - t0
  t0 = time.perf_counter()
  ids, _ = jax.block_until_ready(select(feats, pool, budget, key))
  t_select = time.perf_counter() - t0
  return np.asarray(ids), t_score, t_select


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--n", type=int, default=32768)
  ap.add_argument("--d", type=int, default=64)
  ap.add_argument("--budget", type=int, default=100)
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--devices", default="1,2,4,8")
  args = ap.parse_args()
  counts = [int(c) for c in args.devices.split(",")]
  rng = np.random.default_rng(0)
  x = rng.normal(size=(args.n, args.d)).astype(np.float32)
  lab = np.zeros(args.n, bool)
  lab[rng.choice(args.n, max(1, args.n // 100), replace=False)] = True
  print(f"backend {jax.default_backend()}, {jax.device_count()} devices "
        f"({jax.devices()[0].device_kind}); N={args.n}, d={args.d}, budget={args.budget}")
  print("| devices | score s | select s | ids equal to 1 device |")
  print("|---|---|---|---|")
  ref = None
  for c in counts:
    ids, ts, tsel = run(args.n, args.d, args.budget, args.batch, c, x, lab)
    ref = ids if ref is None else ref
    same = "yes" if np.array_equal(ids, ref) else "NO"
    print(f"| {c} | {ts:.3f} | {tsel:.3f} | {same} |", flush=True)


if __name__ == "__main__":
  main()
