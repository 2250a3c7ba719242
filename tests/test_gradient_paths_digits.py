"""EGL, GraNd and ISAL give the same scores and picks on the digits pool by the
layer taps (the new default) and by vmap(grad) / jvp (the old path): the
digits table's rows for them are unchanged by the switch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from al_jax import data, models, strategies
from al_jax.strategies.base import PoolView
from configs import default


@pytest.fixture(scope="module")
def digits():
  cfg = default.get_config()
  ds = data.load(cfg.data, cfg.seed)
  x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  fns = models.build(cfg.model_name, x.shape[1:], ds.num_classes, **cfg.model)
  params, rest = fns.init(jax.random.key(0))
  labelled = np.zeros(x.shape[0], bool)
  labelled[np.random.default_rng(0).choice(x.shape[0], 60, replace=False)] = True
  # A partly trained model, as in a mid-run round (60 labels, 100 Adam steps).
  opt = optax.adam(1e-3)
  state = opt.init(params)

  @jax.jit
  def step(p, s):
    loss = lambda p: jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(
        fns.apply(p, rest, x[labelled])[0]), y[labelled][:, None], 1))
    u, s = opt.update(jax.grad(loss)(p), s)
    return optax.apply_updates(p, u), s

  for _ in range(100):
    params, state = step(params, state)
  n = x.shape[0]
  pool = PoolView(jnp.arange(n, dtype=jnp.int32), jnp.ones(n, bool), jnp.asarray(labelled),
                  jnp.where(jnp.asarray(labelled), y, -1))
  return fns, params, rest, x, y, pool


def _scores_and_picks(strat, params, rest, x, pool, ext=None):
  key = jax.random.key(0)
  if ext is None:
    s = jax.jit(lambda p: strat.score(p, rest, {"x": x}, key))(params)
    ids, _ = strat.select(s, pool, 20, key)
  else:
    s = jax.jit(lambda p, e: strat.score(p, rest, {"x": x}, key, e))(params, ext)
    ids, _ = strat.select(s, pool, 20, key, ext)
  return np.asarray(s), np.asarray(ids)


@pytest.mark.parametrize("name, old, new", [
    ("egl", dict(path="vmap"), dict(path="taps")),
    ("grand", dict(path="vmap"), dict(path="taps")),
    ("isal", dict(dot="jvp"), dict(dot="taps")),
])
def test_digits_scores_and_picks_are_unchanged(digits, name, old, new):
  fns, params, rest, x, y, pool = digits
  kw = dict(depth=20, repeats=1) if name == "isal" else {}
  ext = None
  if name == "isal":
    strat = strategies.get(name, fns, **kw, **old)
    ext = strat.extension.init(jax.random.key(1), params, rest, x)
    ext = strat.extension.after_fit(params, rest, ext, x, y, pool.labelled)
  s_old, ids_old = _scores_and_picks(strategies.get(name, fns, **kw, **old), params, rest, x,
                                     pool, ext)
  s_new, ids_new = _scores_and_picks(strategies.get(name, fns, **kw, **new), params, rest, x,
                                     pool, ext)
  scale = np.max(np.abs(s_old))
  assert scale > 0
  np.testing.assert_allclose(s_new, s_old, rtol=1e-5, atol=1e-6 * scale)
  np.testing.assert_array_equal(ids_new, ids_old)
