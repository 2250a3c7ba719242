"""Users of the full-network gradient projections: BADGE with
embedding="full_projected" and the TracIn-style score."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import models, per_example, strategies
from helpers import make_pool


@pytest.fixture(scope="module")
def mlp():
  fns = models.build("mlp", (4,), 3, hidden=(5,))
  params, rest = fns.init(jax.random.key(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32))
  return fns, params, rest, x


def test_badge_full_projected_seeds_on_the_projected_gradients(mlp):
  fns, params, rest, x = mlp
  strat = strategies.get("badge", fns, embedding="full_projected", k=32, seed=1)
  feats = jax.jit(lambda p: strat.score(p, rest, {"x": x}, jax.random.key(0)))(params)
  yhat = jnp.argmax(fns.apply(params, rest, x)[0], -1)
  np.testing.assert_allclose(
      feats["h"], per_example.grad_projections(fns, params, rest, x, yhat, k=32, seed=1),
      rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(feats["q"], np.ones((24, 1)))
  pool = make_pool(20, 24, 5, seed=0, id_offset=100)
  ids, _ = strat.select(feats, pool, 6, jax.random.key(2))
  ids = np.asarray(ids)
  labelled_ids = set(np.asarray(pool.ids)[np.asarray(pool.labelled)])
  assert len(set(ids)) == 6 and not set(ids) & labelled_ids and (ids >= 100).all()
  # The first centre is the largest projected gradient among the candidates.
  norms = np.where(np.asarray(pool.unlabelled), np.linalg.norm(feats["h"], axis=1), -1)
  assert ids[0] == 100 + int(np.argmax(norms))
  with pytest.raises(ValueError, match="embedding"):
    strategies.get("badge", fns, embedding="full")


def test_tracin_picks_the_largest_dot_with_the_mean_labelled_embedding(mlp):
  fns, params, rest, x = mlp
  strat = strategies.get("tracin", fns, k=64)
  emb = jax.jit(lambda p: strat.score(p, rest, {"x": x}, jax.random.key(0)))(params)
  pool = make_pool(20, 24, 6, seed=3, id_offset=50)
  ids, scores = strat.select(emb, pool, 5, jax.random.key(1))
  e = np.asarray(emb, np.float64)
  lab = np.asarray(pool.labelled)
  ref = e @ e[lab].mean(0)
  ref[~np.asarray(pool.unlabelled)] = -np.inf
  order = np.argsort(-ref)[:5]
  np.testing.assert_array_equal(np.asarray(ids), 50 + order)
  np.testing.assert_allclose(scores, ref[order], rtol=1e-4)
  with pytest.raises(ValueError, match="k must be"):
    strategies.get("tracin", fns, k=0)
