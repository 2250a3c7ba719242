"""WAAL: critic pieces against NumPy, training through TrainExtension, the query."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from al_jax import models, sharding, strategies, train
from al_jax.strategies import waal
from tests.helpers import make_pool


def weights(c):
  """The critic's params as the reference's (w1, b1, w2, b2), float64."""
  c = nnx.to_pure_dict(c)
  return {"w1": np.asarray(c["hidden"]["kernel"], np.float64),
          "b1": np.asarray(c["hidden"]["bias"], np.float64),
          "w2": np.asarray(c["out"]["kernel"], np.float64),
          "b2": np.asarray(c["out"]["bias"], np.float64)}


def critic(dim, hidden, dropout=0.0, key=0):
  """(views, params) of a fresh critic."""
  net = waal.critic(dim, hidden, dropout)
  return net, net.init(jax.random.key(key))[0]


def np_critic(c, h):
  c = weights(c)
  u = h @ c["w1"] + c["b1"]
  s = np.maximum(u, 0) @ c["w2"] + c["b2"]
  d = 1 / (1 + np.exp(-s[:, 0]))
  # Analytic input gradient: sigma'(s) * W1 diag(relu'(u)) w2.
  grad = (d * (1 - d))[:, None] * (((u > 0) * c["w2"][:, 0]) @ c["w1"].T)
  return d, grad


def test_critic_and_gradient_penalty_match_numpy():
  net, c = critic(6, 5)
  rng = np.random.default_rng(0)
  h_u, h_l = rng.normal(size=(2, 7, 6)).astype(np.float32)
  d, _ = np_critic(c, h_u.astype(np.float64))
  np.testing.assert_allclose(waal.critic_fn(net, c)(jnp.asarray(h_u)), d, rtol=1e-5)
  key = jax.random.key(3)
  gp = waal.gradient_penalty(waal.critic_fn(net, c), jnp.asarray(h_u), jnp.asarray(h_l), key)
  a = np.asarray(jax.random.uniform(jax.random.split(key)[0], (7, 1)), np.float64)
  pts = np.concatenate([h_u + a * (h_l - h_u), h_u, h_l]).astype(np.float64)
  _, g = np_critic(c, pts)
  np.testing.assert_allclose(float(gp), np.mean((np.linalg.norm(g, axis=-1) - 1) ** 2),
                             rtol=1e-4)
  w = np.array([1, 1, 1, 1, 1, 0, 0], np.float32)
  wd = waal.wasserstein(waal.critic_fn(net, c), jnp.asarray(h_u), jnp.asarray(h_l),
                        jnp.asarray(w), 0.5)
  d_l, _ = np_critic(c, h_l.astype(np.float64))
  np.testing.assert_allclose(float(wd), d.mean() - 0.5 * d_l[:5].mean(), rtol=1e-5)


def test_critic_dropout_matches_numpy_and_is_off_without_a_key():
  net, c = critic(6, 5, dropout=0.5)
  d_fn = waal.critic_fn(net, c)
  h = np.random.default_rng(1).normal(size=(7, 6)).astype(np.float32)
  key = jax.random.key(4)
  keep = np.asarray(jax.random.bernoulli(key, 0.5, (7, 5)), np.float64)
  p = weights(c)
  u = np.maximum(h @ p["w1"] + p["b1"], 0) * keep / 0.5
  d = 1 / (1 + np.exp(-(u @ p["w2"] + p["b2"])[:, 0]))
  np.testing.assert_allclose(d_fn(jnp.asarray(h), key), d, rtol=1e-5)
  assert not np.allclose(d_fn(jnp.asarray(h), key), d_fn(h))
  no_dropout = waal.critic_fn(waal.critic(6, 5), c)
  np.testing.assert_array_equal(d_fn(jnp.asarray(h), None), no_dropout(jnp.asarray(h)))


def test_gradient_penalty_gradient_is_finite_when_the_critic_is_flat():
  # All critic ReLUs off: grad D = 0, where d||g|| is 0/0 (this NaN'd VGG runs).
  net, c = critic(4, 3)
  c = nnx.to_pure_dict(c)
  c["hidden"]["bias"] = jnp.full_like(c["hidden"]["bias"], -100.0)
  h = jnp.zeros((5, 4))
  gp, g = jax.value_and_grad(lambda c: waal.gradient_penalty(waal.critic_fn(net, c), h, h,
                                                             jax.random.key(1)))(c)
  np.testing.assert_allclose(float(gp), 1.0, rtol=1e-5)
  assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(g))


def test_query_matches_the_reference_ranking_on_1_and_8_devices(devices):
  del devices
  fns = models.build("mlp", (5,), 4, hidden=(8,))
  params, rest = fns.init(jax.random.key(1))
  strat = strategies.get("waal", fns, selection=10.0, critic_hidden=6)
  x = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
  ext = strat.extension.init(jax.random.key(2), params, rest, x)
  pool = make_pool(60, 64, 12, 1)
  # Brute force, as the reference: total = 0.5 L2 + 0.5 L1 of log p - 10 D; smallest first.
  logits = np.asarray(fns.apply(params, rest, jnp.asarray(x))[0], np.float64)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  h = fns.apply(params, rest, jnp.asarray(x))[1]["pre_logits"]
  d, _ = np_critic(ext["critic"], np.asarray(h, np.float64))
  total = 0.5 * np.linalg.norm(logp, axis=-1) + 0.5 * (-logp).sum(-1) - 10 * d
  unl = np.flatnonzero(np.asarray(pool.unlabelled))
  ref = unl[np.argsort(total[unl], kind="stable")[:9]]
  for n_dev in (1, 8):
    mesh = sharding.make_mesh([("data", n_dev)])
    scores = jax.jit(lambda p, r, x, e: sharding.chunked_map(
        lambda b: strat.score(p, r, {"x": b}, jax.random.key(0), ext=e), x, 16, mesh))(
            params, rest, sharding.shard_rows(mesh, x), ext)
    np.testing.assert_allclose(np.asarray(scores), -total, rtol=1e-4, atol=1e-5)
    sel = jax.jit(lambda s, p, k, e: strat.select(s, p, 9, k, ext=e))
    ids, _ = sel(scores, pool, jax.random.key(0), ext)
    np.testing.assert_array_equal(np.asarray(ids), ref)


def fit_setup(extension):
  rng = np.random.default_rng(0)
  n = 96
  x = rng.normal(size=(n, 4)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int32)
  labelled = np.zeros(n, bool)
  labelled[:24] = True
  x[~labelled] += 2.5  # unlabelled rows sit elsewhere: the critic can tell them apart
  mesh = sharding.make_mesh([("data", -1)])
  fns = models.build("mlp", (4,), 2, hidden=(16,))
  tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                        num_epochs=40, min_steps=0, weight_decay=0.0))
  fit = train.make_fit(fns, tcfg, mesh, extension=extension(fns) if extension else None)
  params, rest = fns.init(jax.random.key(0))
  return fit(params, rest, sharding.shard_rows(mesh, x), sharding.shard_rows(mesh, y),
             sharding.shard_rows(mesh, labelled), jax.random.key(1)), fns, x, labelled


def critic_scores(fns, params, rest, ext, x):
  """The trained critic's D on eval-mode embeddings of x."""
  h = fns.apply(params, rest, jnp.asarray(x))[1]["pre_logits"]
  return np.asarray(waal.critic_fn(waal.critic(fns.embed_dim), ext["critic"])(h))


def test_alpha_zero_trains_exactly_like_cross_entropy_and_the_critic_learns(devices):
  del devices
  (p0, _, _, _), fns, x, labelled = fit_setup(
      lambda f: strategies.get("waal", f, alpha=0.0, long_epoch=False).extension)
  (p_ce, _, _, _), _, _, _ = fit_setup(None)
  # The extension adds only alpha * W to the model's loss.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p0, p_ce)
  # The critic (dropout 0.5 in training, none here) separates labelled (low D)
  # from unlabelled (high D) features the model does not fight (alpha = 0).
  (pa, ra, exta, _), fns, x, labelled = fit_setup(
      lambda f: strategies.get("waal", f, alpha=0.0).extension)
  da = critic_scores(fns, pa, ra, exta, x)
  assert da[~labelled].mean() > da[labelled].mean() + 0.1, (da[~labelled].mean(), da[labelled].mean())
  assert float(exta["w_dist"]) > 0.1 and np.isfinite(float(exta["gp"]))
  # With alpha > 0 the features fight the critic: its margin shrinks (over the
  # reference's long epochs the features win: the margin can even turn negative).
  (p1, r1, ext1, _), fns, x, labelled = fit_setup(
      lambda f: strategies.get("waal", f, alpha=0.5).extension)
  d1 = critic_scores(fns, p1, r1, ext1, x)
  gap_a = da[~labelled].mean() - da[labelled].mean()
  gap1 = d1[~labelled].mean() - d1[labelled].mean()
  assert gap1 < gap_a - 0.1, (gap_a, gap1)
  # And the model parameters differ from plain cross-entropy training.
  assert not np.allclose(p1["head"]["kernel"], p_ce["head"]["kernel"])


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=())
  with pytest.raises(ValueError, match="alpha"):
    strategies.get("waal", fns, alpha=-1.0)


def test_long_epoch_runs_over_the_unlabelled_set_as_the_reference(devices):
  del devices
  # 24 labelled, 72 unlabelled, batch 16, 40 epochs: the reference's zipped
  # loaders give ceil(72 / 16) = 5 steps an epoch; the labelled set alone 2.
  (_, _, _, info), *_ = fit_setup(lambda f: strategies.get("waal", f).extension)
  assert info.steps == 40 * 5, info
  (_, _, _, info), *_ = fit_setup(lambda f: strategies.get("waal", f, long_epoch=False).extension)
  assert info.steps == 40 * 2, info


def test_long_epoch_steps_and_weights_inside_the_compiled_epoch(devices):
  del devices
  # Count the steps and weighted rows the jitted epoch actually runs.
  def count(params, rest, ext, batch, key, epoch):
    del params, rest, key, epoch
    return {"n": ext["n"] + 1, "w": ext["w"] + batch["w"].sum()}

  for long_epoch, steps, rows in ((True, 5, 72), (False, 2, 24)):
    ext_def = train.TrainExtension(
        init=lambda *a: {"n": jnp.zeros((), jnp.int32), "w": jnp.zeros((), jnp.float32)},
        after_step=count, needs_unlabelled=True, long_epoch=long_epoch)
    (_, _, ext, _), *_ = fit_setup(lambda f, e=ext_def: e)
    # Long epochs cycle the 24 labelled rows over 72 rows (5 batches), all counted
    # (the reference's zipped loader); short ones weight the 8 wrap-around rows 0.
    assert int(ext["n"]) == 40 * steps and float(ext["w"]) == 40 * rows, (long_epoch, ext)


def test_one_train_mode_forward_pass_per_set_and_step():
  # The critic's step reuses the loss's train-mode features: no forward pass of its own.
  fns = models.build("mlp", (4,), 2, hidden=(8,), dropout=0.5)
  calls = []

  def counted(name):
    return lambda *a: calls.append(name) or getattr(fns, name)(*a)

  strat = strategies.get("waal", fns._replace(apply=counted("apply"),
                                              apply_train=counted("apply_train")))
  params, rest = fns.init(jax.random.key(0))
  x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
  batch = {"x": jnp.asarray(x), "y": jnp.zeros(8, jnp.int32), "w": jnp.ones(8),
           "x_u": jnp.asarray(x + 1.0)}
  key = jax.random.key(1)
  ext = strat.extension.init(key, params, rest, x)
  _, (_, _, side) = strat.extension.loss(params, rest, ext, batch, key, 0)
  new = strat.extension.after_step(params, rest, ext, {**batch, **side}, key, 0)
  assert calls == ["apply_train", "apply_train"], calls
  # The features it trained on are the train-mode ones (dropout on) of that pass.
  train_h = fns.apply_train(params, rest, batch["x"], key)[0][1]["pre_logits"]
  np.testing.assert_array_equal(side["h_l"], train_h)
  assert not np.allclose(side["h_l"], fns.apply(params, rest, batch["x"])[1]["pre_logits"])
  assert np.isfinite(float(new["w_dist"]))
