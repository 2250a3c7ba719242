"""BADGE: factorised embeddings and distances against materialised ones,
k-means++ seeding against NumPy on the same random draws, the D^2
distribution, uniqueness, 1 vs 8 devices. (digits end to end:
tests/test_loop.py runs configs/digits.py:badge,smoke.)"""

import jax
import jax.numpy as jnp
import numpy as np

from al_jax import models, per_example, sharding
from al_jax.kernels import badge as badge_k
from al_jax.strategies import gradient
from al_jax.strategies.base import PoolView
from tests.helpers import make_pool


def np_kmeans_pp(g, cand, budget, key):
  """k-means++ on materialised g [N, C*d] in float64, drawing step t with the
  same Gumbel noise as the JAX code (argmax log D^2 + G_t = a D^2 draw)."""
  g = np.asarray(g, np.float64)
  sq = lambda i: ((g - g[i]) ** 2).sum(1)
  first = int(np.argmax(np.where(cand, (g ** 2).sum(1), -1)))
  picks, d2 = [first], sq(first)
  for t in range(1, budget):
    gum = np.asarray(jax.random.gumbel(jax.random.fold_in(key, t), (len(g),)), np.float64)
    avail = cand.copy()
    avail[picks] = False
    pos = avail & (d2 > 1e-9)
    if pos.any():
      i = int(np.argmax(np.where(pos, np.log(np.where(pos, d2, 1)) + gum, -np.inf)))
    else:
      i = int(np.argmax(np.where(avail, gum, -np.inf)))
    picks.append(i)
    d2 = np.minimum(d2, sq(i))
  return np.array(picks)


def test_factors_are_the_last_layer_gradient_and_distances_match_materialised():
  fns = models.build("mlp", (4,), 3, hidden=(5,))
  params, rest = fns.init(jax.random.key(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32))
  f = gradient.badge_factors(fns, params, rest, x)
  yhat = jnp.argmax(fns.apply(params, rest, x)[0], -1)
  grad = jax.jit(jax.grad(per_example.example_loss(fns)))
  g = np.stack([np.asarray(grad(params, rest, x[i], yhat[i])["head"]["kernel"]).ravel()
                for i in range(9)])
  np.testing.assert_allclose(np.einsum("nd,nc->ndc", f["h"], f["q"]).reshape(9, -1), g,
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(badge_k.sq_norms(f["h"], f["q"]), (g ** 2).sum(1), rtol=1e-5)
  for i in (0, 4, 8):
    np.testing.assert_allclose(badge_k.sq_dist_to(f["h"], f["q"], badge_k.sq_norms(
        f["h"], f["q"]), i), ((g - g[i]) ** 2).sum(1), rtol=1e-4, atol=1e-6)
  fb = gradient.badge_factors(fns, params, rest, x, bias=True)
  gb = np.stack([np.concatenate([np.asarray(grad(params, rest, x[i], yhat[i])["head"][k]).ravel()
                                 for k in ("kernel", "bias")]) for i in range(9)])
  np.testing.assert_allclose(badge_k.sq_norms(fb["h"], fb["q"]), (gb ** 2).sum(1), rtol=1e-5)


def test_seeding_matches_numpy_on_the_same_key_on_1_and_8_devices(devices):
  del devices
  rng = np.random.default_rng(2)
  n_pad, d, c = 64, 5, 4
  h = rng.normal(size=(n_pad, d)).astype(np.float32)
  q = rng.normal(size=(n_pad, c)).astype(np.float32)
  pool = make_pool(60, n_pad, 10, 3, id_offset=1000)  # ids != positions
  g = np.einsum("nd,nc->ndc", h, q).reshape(n_pad, -1)
  key = jax.random.key(7)
  ref = np_kmeans_pp(g, np.asarray(pool.unlabelled), 20, key)
  strat = gradient.badge(None)
  for n_dev in (1, 8):
    mesh = sharding.make_mesh([("data", n_dev)])
    feats = {"h": sharding.shard_rows(mesh, h), "q": sharding.shard_rows(mesh, q)}
    view = PoolView(*(sharding.shard_rows(mesh, np.asarray(a)) for a in pool))
    ids, dists = jax.jit(lambda f, p, k: strat.select(f, p, 20, k))(feats, view, key)
    np.testing.assert_array_equal(ids, ref + 1000)
    np.testing.assert_allclose(dists[0], np.linalg.norm(g[ref[0]]), rtol=1e-5)
  assert len(set(ref.tolist())) == 20 and np.asarray(pool.unlabelled)[ref].all()


def test_second_centre_follows_d_squared():
  rng = np.random.default_rng(4)
  n = 8
  h = rng.normal(size=(n, 3)).astype(np.float32)
  q = rng.normal(size=(n, 2)).astype(np.float32)
  cand = jnp.ones(n, bool)
  keys = jax.random.split(jax.random.key(0), 4000)
  picks = jax.jit(jax.vmap(lambda k: badge_k.kmeans_pp_gradient(h, q, cand, 2, k)[0]))(keys)
  picks = np.asarray(picks)
  g = np.einsum("nd,nc->ndc", h, q).reshape(n, -1).astype(np.float64)
  first = np.argmax((g ** 2).sum(1))
  assert (picks[:, 0] == first).all()
  d2 = ((g - g[first]) ** 2).sum(1)
  p = d2 / d2.sum()
  freq = np.bincount(picks[:, 1], minlength=n) / len(keys)
  # 4 binomial standard deviations per bin.
  np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / len(keys)) + 1e-9)


def test_duplicates_and_zero_gradients_still_give_unique_unlabelled_ids():
  # Three distinct embeddings repeated, plus all-zero rows (confident
  # predictions): budget exceeds the distinct points, so D hits 0.
  n_pad = 32
  h = np.tile(np.eye(4, dtype=np.float32)[:3], (11, 1))[:n_pad]
  q = np.ones((n_pad, 2), np.float32)
  q[20:] = 0.0
  pool = make_pool(30, n_pad, 5, 0, id_offset=500)
  ids, _ = jax.jit(lambda f, p, k: gradient.badge(None).select(f, p, 12, k))(
      {"h": jnp.asarray(h), "q": jnp.asarray(q)}, pool, jax.random.key(1))
  ids = np.asarray(ids)
  assert len(set(ids.tolist())) == 12
  assert (ids >= 500).all() and np.asarray(pool.unlabelled)[ids - 500].all()

