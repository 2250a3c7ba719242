"""k-center greedy against a NumPy brute force, the 2x bound, and 1 vs 8 devices."""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from al_jax import sharding, strategies
from al_jax.kernels import kcenter
from al_jax.strategies.base import PoolView


def np_greedy(x, centres, candidates, budget, first=None):
  """Textbook k-center greedy with a full distance matrix."""
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
  chosen = list(np.flatnonzero(centres))
  picks = []
  cand = candidates.copy()
  if not chosen:
    picks.append(first)
    chosen.append(first)
    cand[first] = False
  while len(picks) < budget:
    min_d = d[:, chosen].min(1)
    i = int(np.argmax(np.where(cand, min_d, -1.0)))
    picks.append(i)
    chosen.append(i)
    cand[i] = False
  return picks


@pytest.mark.parametrize("n_lab,block", [(5, 2), (0, 4), (17, 256)])
def test_matches_numpy_reference(n_lab, block):
  rng = np.random.default_rng(n_lab)
  x = rng.normal(size=(60, 3)).astype(np.float32)
  centres = np.zeros(60, bool)
  centres[rng.choice(60, n_lab, replace=False)] = True
  candidates = ~centres
  candidates[55:] = False  # e.g. padding rows
  picks, dists = jax.jit(kcenter.k_center_greedy, static_argnums=(3, 5))(
      jnp.asarray(x), jnp.asarray(centres), jnp.asarray(candidates), 8, jax.random.key(0), block)
  picks = np.asarray(picks)
  first = int(picks[0]) if n_lab == 0 else None
  assert picks.tolist() == np_greedy(x.astype(np.float64), centres, candidates, 8, first)
  assert len(set(picks)) == 8 and candidates[picks].all()
  if n_lab:  # each pick's recorded distance is its distance to the centres so far
    chosen = list(np.flatnonzero(centres))
    for p, dist in zip(picks, np.asarray(dists)):
      np.testing.assert_allclose(dist, np.sqrt(((x[chosen] - x[p]) ** 2).sum(-1)).min(), rtol=1e-4)
      chosen.append(p)


def test_random_start_is_seeded():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(30, 2)), jnp.float32)
  none, cand = jnp.zeros(30, bool), jnp.ones(30, bool)
  run = jax.jit(kcenter.k_center_greedy, static_argnums=3)
  a = [int(run(x, none, cand, 3, jax.random.key(k))[0][0]) for k in range(8)]
  assert a == [int(run(x, none, cand, 3, jax.random.key(k))[0][0]) for k in range(8)]
  assert len(set(a)) > 1


def radius(x, chosen):
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
  return d[:, chosen].min(1).max()


@pytest.mark.parametrize("seed", range(4))
def test_radius_within_twice_the_enumerated_optimum(seed):
  x = np.random.default_rng(seed).normal(size=(12, 2))
  k = 3
  best = min(radius(x, list(c)) for c in itertools.combinations(range(12), k))
  picks, _ = kcenter.k_center_greedy(jnp.asarray(x, jnp.float32), jnp.zeros(12, bool),
                                     jnp.ones(12, bool), k, jax.random.key(seed))
  r = radius(x, list(np.asarray(picks)))
  assert best <= r + 1e-6 and r <= 2 * best + 1e-5


def test_coreset_strategy_one_vs_eight_devices(devices):
  del devices
  rng = np.random.default_rng(1)
  n = 64
  emb = rng.normal(size=(n, 5)).astype(np.float32)
  lab = np.zeros(n, bool)
  lab[rng.choice(60, 7, replace=False)] = True
  valid = np.arange(n) < 60
  ids = np.where(valid, np.arange(n), -1).astype(np.int32)
  strat = strategies.get("coreset", None)
  out = []
  for d in (1, 8):
    mesh = sharding.make_mesh([("data", d)])
    pool = PoolView(*(sharding.shard_rows(mesh, a) for a in (ids, valid, lab, np.full(n, -1))))
    got, _ = jax.jit(strat.select, static_argnums=2)(sharding.shard_rows(mesh, emb), pool, 9,
                                                     jax.random.key(0))
    out.append(np.asarray(got))
  np.testing.assert_array_equal(out[0], out[1])
  assert valid[out[0]].all() and not lab[out[0]].any()


# Robust k-center MIP (coreset_mip).

from al_jax.kernels import kcenter_mip


def enumerate_optimum(d, d_lab, budget, outliers=0):
  return min(kcenter_mip.cover_radius(d, d_lab, c, outliers)
             for c in itertools.combinations(range(len(d)), budget))


@pytest.mark.parametrize("seed,n_lab,outliers", [(0, 0, 0), (1, 3, 0), (2, 2, 0), (3, 0, 1),
                                                 (4, 2, 2)])
def test_mip_radius_equals_enumerated_optimum(seed, n_lab, outliers):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(12 + n_lab, 2))
  d = kcenter_mip.pairwise(x[n_lab:])
  d_lab = (kcenter_mip.pairwise(x)[n_lab:, :n_lab].min(1) if n_lab else np.full(12, np.inf))
  picks, r, r_greedy, info = kcenter_mip.robust_k_center(d, d_lab, 3, outliers, 10.0, first=5)
  assert len(set(picks)) == 3 and not info["fallback"]
  best = enumerate_optimum(d, d_lab, 3, outliers)
  assert r <= r_greedy + 1e-12
  np.testing.assert_allclose(r, best, rtol=1e-9)
  # The greedy start in the MIP module matches the JAX greedy on the same data.
  if not n_lab and not outliers:
    g, _ = kcenter.k_center_greedy(jnp.asarray(x, jnp.float32), jnp.zeros(12, bool),
                                   jnp.ones(12, bool), 3, jax.random.key(0))
    g = np.asarray(g)
    assert kcenter_mip.greedy(d, d_lab, 3, int(g[0])) == g.tolist()


def test_mip_falls_back_to_greedy_when_the_solver_gives_up(monkeypatch):
  x = np.random.default_rng(0).normal(size=(10, 2))
  d = kcenter_mip.pairwise(x)
  d_lab = np.full(10, np.inf)
  monkeypatch.setattr(kcenter_mip, "feasible", lambda *a: ("unknown", "time limit"))
  picks, r, r_greedy, info = kcenter_mip.robust_k_center(d, d_lab, 3, 0, 0.01, first=2)
  assert info["fallback"] and picks == kcenter_mip.greedy(d, d_lab, 3, 2) and r == r_greedy


def test_mip_budget_is_nodes_not_seconds(monkeypatch):
  """Same picks with or without a (generous) wall-clock limit; HiGHS gets a node limit
  and, by default, no time limit at all, so a slower machine cannot end a solve early."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(60, 3))
  d, d_lab = kcenter_mip.pairwise(x), np.full(60, np.inf)
  runs = [kcenter_mip.robust_k_center(d, d_lab, 5, 1, t, first=3, node_limit=n)
          for t, n in ((None, 2000), (1000.0, 2000), (None, 1), (None, 1))]
  assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
  assert runs[2][0] == runs[3][0]  # A binding node limit ends the same way every time.
  seen = []
  real = scipy.optimize.milp

  def spy(*a, **kw):
    seen.append(dict(kw["options"]))
    return real(*a, **kw)

  monkeypatch.setattr(scipy.optimize, "milp", spy)
  strat = strategies.get("coreset_mip", None, node_limit=77)
  emb = jnp.asarray(x, jnp.float32)
  pool = PoolView(jnp.arange(60, dtype=jnp.int32) + 7, jnp.ones(60, bool), jnp.zeros(60, bool),
                  jnp.full(60, -1))
  a, _ = strat.select(emb, pool, 4, jax.random.key(0))
  assert seen and all(o["node_limit"] == 77 and "time_limit" not in o for o in seen)
  b, _ = strategies.get("coreset_mip", None, node_limit=77, time_limit=500.0).select(
      emb, pool, 4, jax.random.key(0))
  np.testing.assert_array_equal(a, b)
  assert seen[-1]["time_limit"] == 500.0


@pytest.mark.parametrize("max_candidates", [1000, 20])
def test_coreset_mip_strategy_ids_and_determinism(max_candidates):
  rng = np.random.default_rng(3)
  n = 48
  emb = jnp.asarray(rng.normal(size=(n, 3)), jnp.float32)
  lab = np.zeros(n, bool)
  lab[rng.choice(44, 5, replace=False)] = True
  valid = np.arange(n) < 44
  pool = PoolView(jnp.asarray(np.where(valid, np.arange(n) + 100, -1), jnp.int32),
                  jnp.asarray(valid), jnp.asarray(lab), jnp.full(n, -1))
  strat = strategies.get("coreset_mip", None, max_candidates=max_candidates)
  assert not strat.jit_select
  a, _ = strat.select(emb, pool, 6, jax.random.key(1))
  b, _ = strat.select(emb, pool, 6, jax.random.key(1))
  np.testing.assert_array_equal(a, b)
  pos = np.asarray(a) - 100
  assert len(set(pos)) == 6 and valid[pos].all() and not lab[pos].any()
  # Never worse than the greedy on the whole pool when the MIP sees it all.
  if max_candidates >= n:
    x = np.asarray(emb, np.float64)
    g, _ = kcenter.k_center_greedy(emb, jnp.asarray(lab), jnp.asarray(valid & ~lab), 6,
                                   jax.random.key(1))
    full = kcenter_mip.pairwise(x[valid])
    lab_v = lab[valid]
    def r(p):
      return full[:, np.concatenate([np.flatnonzero(lab_v), p])].min(1)[~lab_v].max()
    assert r(pos) <= r(np.asarray(g)) + 1e-6


def collectives(compiled_text):
  """(kind, result shape, op name) of every collective in compiled HLO."""
  out = []
  for line in compiled_text.split("\n"):
    m = re.search(r"= (\S+|\([^)]*\)) (all-gather|all-reduce|all-to-all|collective-permute)\(",
                  line)
    if m:
      name = re.search(r'op_name="([^"]+)"', line)
      out.append((m.group(2), m.group(1), name.group(1) if name else ""))
  return out


def test_greedy_on_eight_devices_never_gathers_the_pool(devices):
  # Rows stay on their shard: per pick only one row and the per-shard
  # maxima move (a dynamic slice emb[i] used to all-gather all N x D rows).
  del devices
  n, d = 2048, 24
  mesh = sharding.make_mesh([("data", 8)])
  emb = sharding.shard_rows(mesh, np.random.default_rng(0).normal(size=(n, d)).astype(np.float32))
  lab = sharding.shard_rows(mesh, np.arange(n) < 10)
  text = jax.jit(kcenter.k_center_greedy, static_argnums=(3, 5)).lower(
      emb, lab, ~lab, 16, jax.random.key(0), 256).compile().as_text()
  found = collectives(text)
  assert found, "expected some collectives on 8 devices"
  big = [c for c in found if f"[{n}," in c[1] or (f"[{n}]" in c[1] and "while" in c[2])]
  assert not big, big
