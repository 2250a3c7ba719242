"""k-center greedy against a NumPy brute force, the 2x bound, and 1 vs 8 devices."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import kcenter, sharding, strategies
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
