"""Uncertainty baselines and masked selection against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import models, sharding, strategies
from al_jax.kernels import topk
from al_jax.strategies.base import PoolView
from tests.helpers import make_pool


def np_scores(logits):
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  srt = np.sort(p, -1)[:, ::-1]
  ent = -np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0.0), -1)
  return {"least_confidence": 1 - srt[:, 0], "entropy": ent, "margin": -(srt[:, 0] - srt[:, 1])}


def np_select(scores, valid, labelled, budget):
  """Brute force: sort unlabelled rows by score, highest first, ties by position."""
  cand = [i for i in range(len(scores)) if valid[i] and not labelled[i]]
  cand.sort(key=lambda i: (-scores[i], i))
  return np.array(cand[:budget])


class FakeFns:
  """apply returns the input itself as the logits: scores become a function of the logits we
  choose."""

  @staticmethod
  def apply(params, rest, x):
    del params, rest
    return x, {"pre_logits": x, "stages": []}


@pytest.mark.parametrize("name", ["least_confidence", "entropy", "margin"])
def test_uncertainty_matches_numpy(name):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(40, 5)).astype(np.float32) * 3
  logits[0] = [200, 0, 0, 0, 0]  # p = 0 entries: the reference code gives NaN here.
  strat = strategies.get(name, FakeFns())
  got = np.asarray(strat.score(None, None, {"x": jnp.asarray(logits)}, None))
  np.testing.assert_allclose(got, np_scores(logits.astype(np.float64))[name], rtol=1e-4, atol=1e-6)
  pool = make_pool(36, 40, 10, 1, id_offset=300)  # ids != positions
  ids, vals = jax.jit(strat.select, static_argnums=2)(jnp.asarray(got), pool, 7, None)
  ref = np_select(got, np.asarray(pool.valid), np.asarray(pool.labelled), 7)
  np.testing.assert_array_equal(np.asarray(ids), ref + 300)
  np.testing.assert_allclose(vals, got[ref])


def test_masked_top_k_never_returns_labelled_padding_or_nan_first():
  scores = jnp.array([9.0, jnp.nan, 5.0, 8.0, -jnp.inf, 1.0, 100.0, 100.0])
  pool = PoolView(jnp.array([10, 11, 12, 13, 14, 15, -1, -1]), jnp.arange(8) < 6,
                  jnp.array([True, False, False, False, False, False, False, False]),
                  jnp.full(8, -1))
  ids, vals = topk.masked_top_k(scores, pool, 5)
  # Global ids (not positions). Labelled 10 and padding never appear; NaN/-inf
  # rows come after real scores.
  assert list(np.asarray(ids)[:3]) == [13, 12, 15]
  assert set(np.asarray(ids)[3:]) == {11, 14}
  np.testing.assert_array_equal(np.asarray(vals)[:3], [8.0, 5.0, 1.0])


def test_random_is_uniform_over_unlabelled():
  pool = make_pool(12, 16, 4, 0)
  strat = strategies.get("random", None)
  select = jax.jit(strat.select, static_argnums=2)
  counts = np.zeros(16)
  for k in range(600):
    ids, _ = select(jnp.zeros(16), pool, 2, jax.random.key(k))
    ids = np.asarray(ids)
    assert len(set(ids)) == 2
    counts[ids] += 1
  unl = np.asarray(pool.unlabelled)
  assert counts[~unl].sum() == 0
  expected = 600 * 2 / unl.sum()
  # Chi-square with 7 dof: 24.3 is the 0.1% quantile, so a fair sampler fails ~1 in 1000.
  chi2 = np.sum((counts[unl] - expected) ** 2 / expected)
  assert chi2 < 24.3, (counts, chi2)


def test_selection_same_on_1_and_8_devices(devices):
  del devices
  rng = np.random.default_rng(3)
  n = 64
  scores = rng.normal(size=n).astype(np.float32)
  pool = make_pool(60, n, 9, 2)
  out = []
  for d in (1, 8):
    mesh = sharding.make_mesh([("data", d)])
    s = sharding.shard_rows(mesh, scores)
    p = PoolView(*(sharding.shard_rows(mesh, np.asarray(a)) for a in pool))
    for name in ("entropy", "random"):
      strat = strategies.get(name, FakeFns())
      ids, _ = jax.jit(strat.select, static_argnums=2)(s, p, 10, jax.random.key(5))
      out.append((d, name, np.asarray(ids)))
  np.testing.assert_array_equal(out[0][2], out[2][2])
  np.testing.assert_array_equal(out[1][2], out[3][2])


def test_registry_errors():
  with pytest.raises(ValueError, match=r"Unknown strategy 'bogus'; known: \["):
    strategies.get("bogus", None)
  with pytest.raises(ValueError, match=r"unknown options \['temperature'\]"):
    strategies.get("entropy", None, temperature=2.0)


def test_end_to_end_score_on_a_real_model():
  fns = models.build("mlp", (4,), 3, hidden=(8,))
  params, rest = fns.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (10, 4))
  logits = np.asarray(fns.apply(params, rest, x)[0], np.float64)
  got = strategies.get("margin", fns).score(params, rest, {"x": x}, None)
  np.testing.assert_allclose(got, np_scores(logits)["margin"], rtol=1e-4, atol=1e-6)
