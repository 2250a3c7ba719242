"""ISAL: s_test by LiSSA and CG against a dense solve, scores against a loop
of per-example gradients, the after_fit hook, bad options."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from al_jax import models, per_example, sharding, strategies, train
from al_jax.strategies import isal


@pytest.fixture(scope="module")
def problem():
  fns = models.build("mlp", (3,), 3, hidden=(4,))
  params, rest = fns.init(jax.random.key(0))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 3)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, 3, 16).astype(np.int32))
  labelled = jnp.asarray(np.arange(16) % 2 == 0)
  return fns, params, rest, x, y, labelled


def dense_s_test(fns, params, rest, x, y, labelled, lam):
  """(H + lam I)^-1 v on the flattened parameters, float64."""
  theta, unravel = ravel_pytree(params)
  m = np.asarray(labelled)
  loss = lambda t: jnp.mean(per_example.batch_losses(fns, unravel(t), rest, x[m], y[m]))
  hess = np.asarray(jax.jit(jax.hessian(loss))(theta), np.float64)
  v = np.asarray(jax.grad(loss)(theta), np.float64)
  return np.linalg.solve(hess + lam * np.eye(len(v)), v), hess


@pytest.mark.parametrize("solver", ["lissa", "cg"])
def test_s_test_matches_a_dense_solve(problem, solver):
  fns, params, rest, x, y, labelled = problem
  damping, scale = 0.2, 5.0  # lambda = 1
  ref, hess = dense_s_test(fns, params, rest, x, y, labelled, damping * scale)
  eig = np.linalg.eigvalsh(hess)
  assert eig.min() + damping * scale > 0.1 and eig.max() < scale  # LiSSA converges
  got = jax.jit(lambda p, k: isal.s_test(
      fns, p, rest, x, y, labelled, k, solver=solver, damping=damping, scale=scale,
      depth=400, repeats=1, hvp_batch_size=0, val_size=16, cg_iters=60))(params, jax.random.key(1))
  np.testing.assert_allclose(ravel_pytree(got)[0], ref, rtol=2e-3, atol=1e-5)


def test_stochastic_lissa_is_close_to_the_dense_solve(problem):
  fns, params, rest, x, y, labelled = problem
  ref, _ = dense_s_test(fns, params, rest, x, y, labelled, 1.0)
  got = jax.jit(lambda p, k: isal.s_test(
      fns, p, rest, x, y, labelled, k, damping=0.2, scale=5.0, depth=300, repeats=4,
      hvp_batch_size=4, val_size=16))(params, jax.random.key(2))
  got = np.asarray(ravel_pytree(got)[0], np.float64)
  assert np.dot(got, ref) / np.linalg.norm(got) / np.linalg.norm(ref) > 0.95


def test_scores_are_minus_influence_from_a_per_example_loop(problem):
  fns, params, rest, x, _, _ = problem
  s = jax.tree.map(lambda a: jax.random.normal(jax.random.key(a.size), a.shape), params)
  strat = strategies.get("isal", fns)
  got = jax.jit(lambda p, e: strat.score(p, rest, {"x": x}, None, ext=e))(params, {"s_test": s})
  yhat = jnp.argmax(fns.apply(params, rest, x), -1)
  grad = jax.jit(jax.grad(per_example.example_loss(fns)))
  s_flat = np.asarray(ravel_pytree(s)[0], np.float64)
  ref = [np.asarray(ravel_pytree(grad(params, rest, x[i], yhat[i]))[0], np.float64) @ s_flat
         for i in range(x.shape[0])]
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_after_fit_stores_s_test_of_the_trained_model(problem):
  fns, _, _, x, y, labelled = problem
  mesh = sharding.make_mesh([("data", 1)])  # sharding: tests/test_loop.py (1 vs 8)
  cfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=8,
                                       num_epochs=2, min_steps=0, weight_decay=0.0))
  kw = dict(solver="cg", damping=0.2, scale=5.0, val_size=16, cg_iters=30)
  strat = strategies.get("isal", fns, **kw)
  fit = train.make_fit(fns, cfg, mesh, extension=strat.extension)
  params, rest = fns.init(jax.random.key(3))
  params, rest, ext, _ = fit(params, rest, *(sharding.shard_rows(mesh, np.asarray(a))
                                             for a in (x, y, labelled)), jax.random.key(4))
  ref = jax.jit(lambda p, r, k: isal.s_test(fns, p, r, x, y, labelled, k, **kw))(
      params, rest, ext["key"])
  np.testing.assert_allclose(ravel_pytree(ext["s_test"])[0], ravel_pytree(ref)[0],
                             rtol=1e-3, atol=1e-6)
  assert float(jnp.linalg.norm(ravel_pytree(ext["s_test"])[0])) > 0


@pytest.mark.parametrize("kw, match", [(dict(solver="newton"), "solver"),
                                       (dict(scale=0.0), "scale"), (dict(depth=0), "depth"),
                                       (dict(damping=-1.0), "damping")])
def test_bad_options_fail_loudly(kw, match):
  with pytest.raises(ValueError, match=match):
    strategies.get("isal", None, **kw)
