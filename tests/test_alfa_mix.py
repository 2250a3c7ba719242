"""ALFA-Mix: closed-form alpha vs grid search, candidates vs explicit mixing, k-means."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import models, sharding, strategies
from al_jax.strategies import alfa_mix
from al_jax.strategies.base import PoolView


def test_closed_form_alpha_maximises_the_linearised_loss_on_a_grid():
  rng = np.random.default_rng(0)
  for trial in range(5):
    z, a, g = rng.normal(size=(3, 2))
    cap = 0.2
    eps = cap / np.sqrt(2)
    alpha = np.asarray(alfa_mix.closed_form_alpha(jnp.asarray(z[None], jnp.float32),
                                                  jnp.asarray(a[None], jnp.float32),
                                                  jnp.asarray(g[None], jnp.float32), cap))[0]
    diff = a - z
    budget = eps * np.linalg.norm(diff)
    # The constraint holds with equality at the closed form.
    np.testing.assert_allclose(np.linalg.norm(alpha * diff), budget, rtol=1e-4)
    # Brute force: every alpha on a fine grid that satisfies the constraint.
    lim = 1.2 * np.abs(alpha).max()
    ax = np.linspace(-lim, lim, 801)
    grid = np.stack(np.meshgrid(ax, ax), -1).reshape(-1, 2)
    ok = np.linalg.norm(grid * diff, axis=-1) <= budget
    obj = (grid * diff) @ g
    best = grid[ok][np.argmax(obj[ok])]
    assert (alpha * diff) @ g >= obj[ok].max() - 1e-6, trial
    # The objective is flat along the constraint near the optimum (second
    # order), so the grid's argmax sits within a few percent of the closed form.
    np.testing.assert_allclose(best, alpha, atol=0.03 * lim)
    np.testing.assert_allclose((alpha * diff) @ g, obj[ok].max(), rtol=1e-3)


def test_closed_form_alpha_nearly_maximises_the_true_loss_for_small_eps():
  fns = models.build("mlp", (3,), 4, hidden=(2,))
  params, rest = fns.init(jax.random.key(0))
  rng = np.random.default_rng(1)
  z = jnp.asarray(np.abs(rng.normal(size=(1, 2))), jnp.float32)
  a = jnp.asarray(np.abs(rng.normal(size=(1, 2))), jnp.float32)
  head = lambda h: fns.head(params, rest, h)
  y = int(jnp.argmax(head(z)))
  ce = lambda h: -jax.nn.log_softmax(head(h))[:, y].sum()
  g = jax.grad(ce)(z)
  cap = 0.05
  alpha = alfa_mix.closed_form_alpha(z, a, g, cap)
  diff = np.asarray(a - z)[0]
  budget = cap / np.sqrt(2) * np.linalg.norm(diff)
  ax = np.linspace(-3 * np.abs(alpha).max(), 3 * np.abs(alpha).max(), 401)
  grid = np.stack(np.meshgrid(ax, ax), -1).reshape(-1, 2)
  grid = grid[np.linalg.norm(grid * diff, axis=-1) <= budget]
  losses = jax.vmap(lambda al: ce(z + al[None] * (a - z)))(jnp.asarray(grid, jnp.float32))
  got = float(ce(z + alpha * (a - z)))
  base = float(ce(z))
  # Second-order error only: the closed form gets nearly all of the best gain.
  assert got - base >= 0.97 * (float(losses.max()) - base)


def make_pool(n, n_pad, lab_idx, labels_all):
  valid = np.arange(n_pad) < n
  labelled = np.zeros(n_pad, bool)
  labelled[lab_idx] = True
  ids = np.where(valid, np.arange(n_pad), -1).astype(np.int32)
  labels = np.where(labelled, labels_all, -1).astype(np.int32)
  return PoolView(*(jnp.asarray(a) for a in (ids, valid, labelled, labels)))


def numpy_candidates(z, w, b, labelled, labels, unl, budget, num_classes, cap_step, mode, grid_n):
  """Explicit mixing: build every mixed embedding and run the head on it."""
  z = z.astype(np.float64)
  logits = z @ w + b
  pred = logits.argmax(-1)
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  g = (p - np.eye(num_classes)[pred]) @ w.T  # d CE / d z for a linear head
  lab_mean = z[labelled].mean(0)
  anchors = [z[labelled & (labels == k)].mean(0) if (labelled & (labels == k)).any()
             else lab_mean for k in range(num_classes)]
  d = z.shape[1]
  cand = np.zeros(len(z), bool)
  best = np.full(len(z), np.inf)
  steps = int(np.ceil(1 / cap_step - 1e-9))
  for s in range(1, steps + 1):
    cap = s * cap_step
    for i in np.flatnonzero(unl):
      for a in anchors:
        if mode == "closed_form":
          diff = a - z[i]
          step = cap / np.sqrt(d) * np.linalg.norm(diff) / np.linalg.norm(g[i])
          mixed = z[i] + step * g[i]
          alpha_norm = np.linalg.norm(step * g[i] / (diff + 1e-8))
          if (mixed @ w + b).argmax() != pred[i]:
            cand[i] = True
            best[i] = min(best[i], alpha_norm)
        else:
          for j in range(1, grid_n + 1):
            al = cap * j / grid_n
            if (((1 - al) * z[i] + al * a) @ w + b).argmax() != pred[i]:
              cand[i] = True
              best[i] = min(best[i], al * np.sqrt(d))
              break
    if cand.sum() > budget:
      break
  return cand, best


@pytest.mark.parametrize("mode,budget", [("closed_form", 3), ("closed_form", 40), ("grid", 3),
                                         ("grid", 40)])
def test_candidates_match_explicit_mixing(mode, budget):
  rng = np.random.default_rng(2)
  n, n_pad, c = 40, 48, 4
  fns = models.build("mlp", (5,), c, hidden=(6,))
  params, rest = fns.init(jax.random.key(2))
  x = rng.normal(size=(n_pad, 5)).astype(np.float32) * 2
  labels_all = rng.integers(0, c - 1, n_pad)  # class c-1 has no labels: anchor = labelled mean
  pool = make_pool(n, n_pad, rng.choice(n, 10, replace=False), labels_all)
  strat = alfa_mix.alfa_mix(fns, alpha_mode=mode, alpha_cap=0.2, alpha_grid=5)
  feats = jax.jit(strat.score)(params, rest, {"x": jnp.asarray(x)}, None)
  cand, best = jax.jit(lambda f, p: alfa_mix.find_candidates(
      f, p, budget, c, alpha_cap=0.2, alpha_mode=mode, alpha_grid=5))(feats, pool)
  w = np.asarray(params["head"]["kernel"], np.float64)
  b = np.asarray(params["head"]["bias"], np.float64)
  ref_c, ref_b = numpy_candidates(np.asarray(feats["z"]), w, b, np.asarray(pool.labelled),
                                  np.asarray(pool.labels), np.asarray(pool.unlabelled), budget,
                                  c, 0.2, mode, 5)
  np.testing.assert_array_equal(np.asarray(cand), ref_c)
  assert 0 < ref_c.sum()
  np.testing.assert_allclose(np.asarray(best)[ref_c], ref_b[ref_c], rtol=1e-3)
  # Never a labelled or padding row.
  assert not (np.asarray(cand) & ~np.asarray(pool.unlabelled)).any()


def test_kmeans_picks_the_point_nearest_each_blob_centre():
  rng = np.random.default_rng(3)
  centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [-10, 5]], np.float32)
  x = np.concatenate([c + rng.normal(size=(12, 2)) for c in centres]).astype(np.float32)
  mask = np.ones(len(x), bool)
  mask[::7] = False  # masked-out rows are never picked
  x_all = np.concatenate([x, np.full((4, 2), 100.0, np.float32)])  # far-away masked rows
  mask_all = np.concatenate([mask, np.zeros(4, bool)])
  km = jax.jit(alfa_mix.nearest_to_centres, static_argnums=2)
  # Brute force: the blobs are the clusters; pick each blob's masked row nearest its mean.
  ref = np.zeros(len(x_all), bool)
  for k in range(5):
    rows = np.flatnonzero(mask_all[:60] & (np.arange(60) // 12 == k))
    mean = x_all[rows].mean(0)
    ref[rows[np.argmin(((x_all[rows] - mean) ** 2).sum(-1))]] = True
  for seed in range(5):
    picks = np.asarray(km(jnp.asarray(x_all), jnp.asarray(mask_all), 5, jax.random.key(seed)))
    np.testing.assert_array_equal(picks, ref, err_msg=f"seed {seed}")


def test_select_takes_candidates_fills_randomly_and_is_deterministic(devices):
  del devices
  rng = np.random.default_rng(4)
  n, n_pad, c = 60, 64, 3
  fns = models.build("mlp", (5,), c, hidden=(8,))
  params, rest = fns.init(jax.random.key(4))
  x = rng.normal(size=(n_pad, 5)).astype(np.float32)
  pool = make_pool(n, n_pad, rng.choice(n, 12, replace=False), rng.integers(0, c, n_pad))
  out = {}
  for d, (budget, cap) in itertools.product((1, 8), ((4, 0.2), (30, 0.05))):
    strat = strategies.get("alfa_mix", fns, alpha_cap=cap)
    mesh = sharding.make_mesh([("data", d)])
    feats = jax.jit(lambda p, r, x: sharding.chunked_map(
        lambda bx: strat.score(p, r, {"x": bx}, None), x, 16, mesh))(
            params, rest, sharding.shard_rows(mesh, x))
    sel = jax.jit(strat.select, static_argnums=2)
    ids, scores = sel(feats, pool, budget, jax.random.key(5))
    ids2, _ = sel(feats, pool, budget, jax.random.key(5))
    np.testing.assert_array_equal(ids, ids2)
    ids = np.asarray(ids)
    assert len(set(ids.tolist())) == budget
    assert np.asarray(pool.unlabelled)[ids].all()
    cand, _ = alfa_mix.find_candidates(feats, pool, budget, c, alpha_cap=cap,
                                       alpha_mode="closed_form", alpha_grid=10)
    cand = np.asarray(cand)
    if cand.sum() <= budget:  # every candidate, then random fill (score -1)
      assert set(np.flatnonzero(cand)) <= set(ids.tolist())
      assert (np.asarray(scores) == -1).sum() == budget - cand.sum()
    else:  # one candidate per cluster, all candidates
      assert cand[ids].all()
    out[(d, budget)] = ids
  for budget in (4, 30):
    np.testing.assert_array_equal(out[(1, budget)], out[(8, budget)])


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=())
  with pytest.raises(ValueError, match="alpha_mode"):
    strategies.get("alfa_mix", fns, alpha_mode="learned")
  with pytest.raises(ValueError, match="alpha_cap"):
    strategies.get("alfa_mix", fns, alpha_cap=0.0)
