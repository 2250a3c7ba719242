"""DFAL: batched DeepFool against the analytic linear case and a per-example loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import loop, metrics, models, sharding, strategies
from al_jax.strategies import dfal
from tests.helpers import make_pool


def linear_model(d=2, c=4, seed=0):
  fns = models.build("mlp", (d,), c, hidden=())  # no hidden layer: logits = x W + b
  params, rest = fns.init(jax.random.key(seed))
  w = np.asarray(params["head"]["kernel"], np.float64)
  b = np.asarray(params["head"]["bias"], np.float64)
  return fns, params, rest, w, b


def analytic_distance(x, w, b):
  """min_k |f_k - f_y| / ||w_k - w_y|| (the distance to the nearest facet) and that ||w||."""
  f = x @ w + b
  y = f.argmax(-1)
  dist, wnorm = [], []
  for i in range(len(x)):
    d = [(abs(f[i, k] - f[i, y[i]]) / np.linalg.norm(w[:, k] - w[:, y[i]]),
          np.linalg.norm(w[:, k] - w[:, y[i]])) for k in range(w.shape[1]) if k != y[i]]
    best = min(d)
    dist.append(best[0])
    wnorm.append(best[1])
  return np.array(dist), np.array(wnorm)


def brute_force_distance(x, w, b, radii, angles=3600):
  """Smallest radius on a polar grid around each 2-D x whose point changes the label."""
  f0 = (x @ w + b).argmax(-1)
  t = np.linspace(0, 2 * np.pi, angles, endpoint=False)
  dirs = np.stack([np.cos(t), np.sin(t)], -1)
  out = []
  for i in range(len(x)):
    for r in radii:
      if ((x[i] + r * dirs) @ w + b).argmax(-1).__ne__(f0[i]).any():
        out.append(r)
        break
  return np.array(out)


def logits_fn(fns, params, rest):
  return lambda xi: fns.apply(params, rest, xi[None])[0][0]


def test_linear_deepfool_equals_analytic_and_brute_force_distance():
  fns, params, rest, w, b = linear_model()
  x = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
  pert, iters, flipped = jax.jit(
      lambda x: dfal.deepfool(logits_fn(fns, params, rest), x, 50, 0.0))(jnp.asarray(x))
  dist, wn = analytic_distance(x.astype(np.float64), w, b)
  norm = np.linalg.norm(np.asarray(pert, np.float64), axis=-1)
  # DeepFool's step is (|f| + slack) / ||w||: the distance plus slack / ||w||.
  np.testing.assert_allclose(norm, dist + dfal._SLACK / wn, rtol=1e-4, atol=1e-6)
  # One linearised step is exact for an affine model: done after 1 iteration.
  np.testing.assert_array_equal(np.asarray(iters), 1)
  assert np.asarray(flipped).all()
  radii = np.arange(1, 4001) * 1e-3 * dist.max() * 1.2 / 4
  brute = brute_force_distance(x.astype(np.float64), w, b, radii)
  np.testing.assert_allclose(dist, brute, atol=2 * (radii[1] - radii[0]))
  # The perturbation points to the closest facet: just short of it, no flip.
  f = lambda z: (z @ w + b).argmax(-1)
  p = np.asarray(pert, np.float64)
  scale = dist / norm
  assert (f(x + p * (scale - 1e-3)[:, None]) == f(x)).all()
  assert (f(x + p) != f(x)).all()


def test_overshoot_scales_the_applied_perturbation():
  fns, params, rest, w, b = linear_model(seed=1)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2)), jnp.float32)
  pert, iters, _ = dfal.deepfool(logits_fn(fns, params, rest), x, 50, 0.5)
  dist, wn = analytic_distance(np.asarray(x, np.float64), w, b)
  np.testing.assert_allclose(np.linalg.norm(pert, axis=-1), 1.5 * (dist + dfal._SLACK / wn),
                             rtol=1e-4)
  np.testing.assert_array_equal(iters, 1)


def loop_deepfool(f, x, max_iter, overshoot):
  """Slow reference: one example at a time, a Python loop over iterations and classes."""
  jac = jax.jit(jax.jacobian(f))
  f = jax.jit(f)
  perts, iters = [], []
  for xi in np.asarray(x, np.float64):
    y0 = int(np.argmax(f(jnp.asarray(xi, jnp.float32))))
    eta = np.zeros_like(xi)
    it = 0
    while it < max_iter:
      xa = jnp.asarray(xi + (1 + overshoot) * eta, jnp.float32)
      if it > 0 and int(np.argmax(f(xa))) != y0:
        break
      fx = np.asarray(f(xa), np.float64)
      j = np.asarray(jac(xa), np.float64).reshape(len(fx), -1)
      best, r = np.inf, None
      for k in range(len(fx)):
        if k == y0:
          continue
        wk = j[k] - j[y0]
        dk = abs(fx[k] - fx[y0]) / np.linalg.norm(wk)
        if dk < best:
          best = dk
          r = (abs(fx[k] - fx[y0]) + dfal._SLACK) / np.linalg.norm(wk) ** 2 * wk
      eta = eta + r.reshape(xi.shape)
      it += 1
    perts.append((1 + overshoot) * eta)
    iters.append(it)
  return np.stack(perts), np.array(iters)


def test_nonlinear_matches_loop_and_stops_once_the_label_flips():
  fns = models.build("mlp", (6,), 5, hidden=(16, 16))
  params, rest = fns.init(jax.random.key(3))
  x = jnp.asarray(np.random.default_rng(3).normal(size=(8, 6)), jnp.float32)
  f = logits_fn(fns, params, rest)
  run = jax.jit(lambda x, m: dfal.deepfool(f, x, m, 0.02), static_argnums=1)
  pert, iters, flipped = run(x, 30)
  ref_pert, ref_iters = loop_deepfool(f, x, 30, 0.02)
  np.testing.assert_array_equal(np.asarray(iters), ref_iters)
  np.testing.assert_allclose(np.asarray(pert), ref_pert, rtol=2e-3, atol=2e-4)
  y0 = np.asarray(jnp.argmax(jax.vmap(f)(x), -1))
  y_adv = np.asarray(jnp.argmax(jax.vmap(f)(x + pert), -1))
  np.testing.assert_array_equal(y_adv != y0, np.asarray(flipped))
  assert np.asarray(flipped).all()
  # With one step fewer, an example has not flipped yet: iterations stop at the flip.
  for m in range(1, int(np.max(iters)) + 1):
    p_m, it_m, fl_m = run(x, m)
    np.testing.assert_array_equal(np.asarray(it_m), np.minimum(np.asarray(iters), m))
    np.testing.assert_array_equal(np.asarray(fl_m), np.asarray(iters) <= m)
    done = np.asarray(iters) <= m
    np.testing.assert_allclose(np.asarray(p_m)[done], np.asarray(pert)[done], rtol=1e-5,
                               atol=1e-6)


def test_strategy_selects_smallest_perturbations_same_on_1_and_8_devices(devices):
  del devices
  fns = models.build("mlp", (6,), 5, hidden=(16,))
  params, rest = fns.init(jax.random.key(4))
  x = np.random.default_rng(4).normal(size=(64, 6)).astype(np.float32)
  strat = strategies.get("dfal", fns, max_iter=20, overshoot=0.02)
  pool = make_pool(60, 64, 10, 4)
  out = {}
  for d in (1, 8):
    mesh = sharding.make_mesh([("data", d)])
    xs = sharding.shard_rows(mesh, x)
    score = jax.jit(lambda p, r, x: sharding.chunked_map(
        lambda b: strat.score(p, r, {"x": b}, jax.random.key(0)), x, 16, mesh))
    s = np.asarray(score(params, rest, xs))
    ids, vals = jax.jit(strat.select, static_argnums=2)(jnp.asarray(s), pool, 7, jax.random.key(1))
    out[d] = (s, np.asarray(ids))
  np.testing.assert_allclose(out[1][0], out[8][0], rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(out[1][1], out[8][1])
  ids = out[1][1]
  s = out[1][0]
  unl = np.flatnonzero(np.asarray(pool.unlabelled))
  ref = unl[np.argsort(-s[unl], kind="stable")[:7]]
  np.testing.assert_array_equal(np.sort(ids), np.sort(ref))
  assert len(set(ids.tolist())) == 7 and not np.asarray(pool.labelled)[ids].any()
  # Score = -||perturbation||: compare with the batched DeepFool directly.
  pert, _, _ = dfal.deepfool(logits_fn(fns, params, rest), jnp.asarray(x), 20, 0.02)
  np.testing.assert_allclose(s, -np.linalg.norm(pert, axis=-1), rtol=1e-4, atol=1e-6)


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=())
  with pytest.raises(ValueError, match="max_iter"):
    strategies.get("dfal", fns, max_iter=0)
  with pytest.raises(ValueError, match="overshoot"):
    strategies.get("dfal", fns, overshoot=-1.0)


def test_end_to_end_digits_smoke(tmp_path):
  from configs import digits
  c = digits.get_config("dfal,smoke")
  summary = loop.run(c, str(tmp_path))
  assert summary["strategy"] == "dfal" and 0.0 <= summary["aubc"] <= 1.0
  sel = [r["ids"] for r in metrics.read_jsonl(str(tmp_path / "selected.jsonl")) if r["round"] >= 0]
  flat = sum(sel, [])
  assert len(flat) == len(set(flat)) == c.al.num_rounds * c.al.query_size
  # Selected scores are -||perturbation||, so they are <= 0 and sorted descending.
  scores = [r["scores"] for r in metrics.read_jsonl(str(tmp_path / "selected.jsonl"))
            if r["round"] >= 0]
  for s in scores:
    assert all(v <= 0 for v in s) and s == sorted(s, reverse=True)


@pytest.mark.parametrize("chunk", [0, 7, 16, 64])
def test_chunked_scores_equal_the_whole_batch(chunk):
  # Chunks bound vmap(jacrev)'s memory; examples never interact, so any
  # chunk size (7: a padded last chunk) gives the unchunked scores.
  fns = models.build("mlp", (6,), 5, hidden=(16,))
  params, rest = fns.init(jax.random.key(5))
  x = jnp.asarray(np.random.default_rng(5).normal(size=(30, 6)).astype(np.float32))
  pert, _, _ = dfal.deepfool(logits_fn(fns, params, rest), x, 20, 0.02)
  strat = strategies.get("dfal", fns, max_iter=20, overshoot=0.02, chunk_size=chunk)
  s = jax.jit(lambda p, r, xb: strat.score(p, r, {"x": xb}, jax.random.key(0)))(params, rest, x)
  np.testing.assert_allclose(np.asarray(s), -np.linalg.norm(np.asarray(pert), axis=-1),
                             rtol=1e-5, atol=1e-6)


def test_negative_chunk_size_fails_loudly():
  fns = models.build("mlp", (4,), 3, hidden=())
  with pytest.raises(ValueError, match="chunk_size must be >= 0"):
    strategies.get("dfal", fns, chunk_size=-1)
