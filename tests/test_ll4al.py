"""LL4AL: ranking loss and loss module against NumPy, training, detaching, the query."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from al_jax import models, sharding, strategies, train
from al_jax.strategies import ll4al
from al_jax.strategies.base import PoolView


def np_ranking_loss(pred, target, w, margin, kind):
  """Per-pair loop, as the reference's LossPredLoss (plus row weights)."""
  b = len(pred)
  total = count = 0.0
  for i in range(b // 2):
    j = b - 1 - i
    if w[i] == 0 or w[j] == 0:
      continue
    d = pred[i] - pred[j]
    if kind == "margin":
      one = 2 * np.sign(max(target[i] - target[j], 0.0)) - 1
      total += max(0.0, margin - one * d)
    else:
      t = float(target[i] > target[j])
      s = 1 / (1 + np.exp(-d))
      total += -(t * np.log(s) + (1 - t) * np.log(1 - s))
    count += 1
  return total / max(count, 1)


@pytest.mark.parametrize("kind", ["margin", "bce"])
@pytest.mark.parametrize("b", [7, 8])
def test_ranking_loss_matches_a_pair_loop(kind, b):
  rng = np.random.default_rng(b)
  pred = rng.normal(size=b).astype(np.float32)
  target = rng.exponential(size=b).astype(np.float32)
  target[1] = target[b - 2]  # a tie counts as "not bigger"
  w = np.ones(b, np.float32)
  w[-1] = 0.0  # a wrap-around row drops its pair
  got = ll4al.ranking_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(w), 0.7, kind)
  np.testing.assert_allclose(float(got), np_ranking_loss(pred.astype(np.float64), target, w,
                                                         0.7, kind), rtol=1e-5)
  # No gradient flows into the target losses.
  g = jax.grad(lambda t: ll4al.ranking_loss(jnp.asarray(pred), t, jnp.asarray(w), 1.0, kind))(
      jnp.asarray(target))
  assert not np.any(np.asarray(g))


def np_loss_net(net, feats):
  net = nnx.to_pure_dict(net)
  hs = []
  for i, f in enumerate(feats):
    f = np.asarray(f, np.float64)
    if f.ndim == 4:
      f = f.mean(axis=(1, 2))
    layer = net["fc"][i]
    hs.append(np.maximum(f @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0))
  out = net["out"]
  return (np.concatenate(hs, -1) @ np.asarray(out["kernel"]) + np.asarray(out["bias"]))[:, 0]


def test_loss_module_pools_and_predicts_like_numpy():
  net, _ = ll4al.loss_net((3, 5), hidden=4).init(jax.random.key(0))
  rng = np.random.default_rng(0)
  feats = [rng.normal(size=(6, 4, 4, 3)).astype(np.float32),
           rng.normal(size=(6, 5)).astype(np.float32)]
  np.testing.assert_allclose(ll4al.predict(net, [jnp.asarray(f) for f in feats], hidden=4),
                             np_loss_net(net, feats), rtol=1e-5, atol=1e-6)


def fit_ll4al(ext_kw, num_epochs=60, extension=True):
  rng = np.random.default_rng(0)
  n = 96
  x = rng.normal(size=(n, 6)).astype(np.float32)
  y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
  y[:8] = 1 - y[:8]  # label noise: some rows keep a high loss to be ranked
  labelled = np.zeros(n, bool)
  labelled[:64] = True
  mesh = sharding.make_mesh([("data", 1)])  # one device: compiles fastest
  fns = models.build("mlp", (6,), 2, hidden=(16, 8))
  tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                        num_epochs=num_epochs, min_steps=0, weight_decay=0.0))
  strat = strategies.get("ll4al", fns, **ext_kw)
  fit = train.make_fit(fns, tcfg, mesh, extension=strat.extension if extension else None)
  params, rest = fns.init(jax.random.key(0))
  out = fit(params, rest, *(sharding.shard_rows(mesh, a) for a in (x, y, labelled)),
            jax.random.key(1))
  return out, fns, strat, x, y, labelled


def test_module_learns_to_rank_the_losses(devices):
  del devices
  (params, rest, ext, _), fns, strat, x, y, labelled = fit_ll4al(dict(module_lr=1e-2))
  xl, yl = jnp.asarray(x[labelled]), jnp.asarray(y[labelled])
  nll = optax.softmax_cross_entropy_with_integer_labels(fns.apply(params, rest, xl)[0], yl)
  w = jnp.ones(len(yl))
  fresh = strat.extension.init(jax.random.key(1), params, rest, x)
  before = ll4al.ranking_loss(ll4al.predicted_loss(fns, params, rest, xl, fresh), nll, w)
  after = ll4al.ranking_loss(ll4al.predicted_loss(fns, params, rest, xl, ext), nll, w)
  assert float(after) < 0.7 * float(before), (float(before), float(after))
  # The noisy rows (highest true loss) are predicted above the median.
  pred = np.asarray(ll4al.predicted_loss(fns, params, rest, jnp.asarray(x), ext))
  assert np.mean(pred[:8] > np.median(pred[labelled])) >= 0.75, pred[:8]


def test_detached_module_leaves_the_backbone_as_cross_entropy_trains_it(devices):
  del devices
  (p_det, *_), *_ = fit_ll4al(dict(detach_epoch=-1), num_epochs=3)
  (p_ce, *_), *_ = fit_ll4al(dict(), num_epochs=3, extension=False)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p_det, p_ce)
  (p_on, *_), *_ = fit_ll4al(dict(detach_epoch=1000), num_epochs=3)
  assert not np.allclose(p_on["layers"][0]["kernel"], p_ce["layers"][0]["kernel"])


def test_query_takes_the_highest_predicted_loss_among_unlabelled_on_8_devices(devices):
  del devices
  fns = models.build("cnn", (8, 8, 1), 3, filters=2, kernel_size=3, dense=6)
  params, rest = fns.init(jax.random.key(1))
  strat = strategies.get("ll4al", fns, hidden=5)
  x = np.random.default_rng(1).normal(size=(64, 8, 8, 1)).astype(np.float32)
  ext = strat.extension.init(jax.random.key(2), params, rest, x)
  rng = np.random.default_rng(3)
  valid = np.arange(64) < 60
  labelled = np.zeros(64, bool)
  labelled[rng.choice(60, 12, replace=False)] = True
  pool = PoolView(*(jnp.asarray(a) for a in (np.where(valid, np.arange(64), -1).astype(np.int32),
                                               valid, labelled, np.full(64, -1, np.int32))))
  feats = fns.apply(params, rest, jnp.asarray(x))[1]["stages"]
  pred = np_loss_net(ext["params"], [np.asarray(f) for f in feats])
  unl = np.flatnonzero(valid & ~labelled)
  ref = unl[np.argsort(-pred[unl], kind="stable")[:9]]
  # (test_loop checks 1 vs 8 devices end to end for every strategy.)
  mesh = sharding.make_mesh([("data", 8)])
  scores = jax.jit(lambda p, r, x, e: sharding.chunked_map(
      lambda b: strat.score(p, r, {"x": b}, jax.random.key(0), ext=e), x, 16, mesh))(
          params, rest, sharding.shard_rows(mesh, x), ext)
  np.testing.assert_allclose(np.asarray(scores), pred, rtol=1e-4, atol=1e-5)
  ids, _ = jax.jit(lambda s, p, e: strat.select(s, p, 9, jax.random.key(0), ext=e))(
      scores, pool, ext)
  np.testing.assert_array_equal(np.asarray(ids), ref)


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=(4,))
  with pytest.raises(ValueError, match="margin"):
    strategies.get("ll4al", fns, margin=-1.0)
  with pytest.raises(ValueError, match="ranking loss 'hinge'"):
    strategies.get("ll4al", fns, ranking="hinge")
  # A model without stage features: the module has nothing to read.
  flat = models.build("mlp", (4,), 3, hidden=())
  params, rest = flat.init(jax.random.key(0))
  with pytest.raises(ValueError, match="stages"):
    strategies.get("ll4al", flat).extension.init(jax.random.key(1), params, rest,
                                                 jnp.zeros((8, 4)))


# End to end: tests/test_loop.py smoke-runs every configs/*.py (these strategies' digits,
# MNIST-10k and CIFAR-10 configs, the last two through a candidate subset) and runs every
# registered strategy on 1 vs 8 devices.


def test_warm_start_carries_the_loss_module(devices):
  del devices
  (_, _, ext, _), fns, strat, x, y, labelled = fit_ll4al(dict(), num_epochs=2)
  mesh = sharding.make_mesh([("data", 1)])
  tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                        num_epochs=0, min_steps=0, weight_decay=0.0))
  fit = train.make_fit(fns, tcfg, mesh, extension=strat.extension)
  params, rest = fns.init(jax.random.key(0))
  args = (params, rest, *(sharding.shard_rows(mesh, a) for a in (x, y, labelled)), jax.random.key(5))
  # No epochs: the module is exactly what fit started from.
  _, _, warm, _ = fit(*args, ext_params=ext["params"])
  jax.tree.map(np.testing.assert_array_equal, warm["params"], ext["params"])
  _, _, cold, _ = fit(*args)
  cold, trained = (nnx.to_pure_dict(e["params"]) for e in (cold, ext))
  assert not np.allclose(cold["out"]["kernel"], trained["out"]["kernel"])


def test_loop_passes_the_trained_module_to_the_next_round_only_when_warm(tmp_path, monkeypatch):
  from configs import digits
  from al_jax import loop

  seen = []
  real = train.make_fit

  def spy(*a, **k):
    fit = real(*a, **k)

    def wrapped(*fa, ext_params=None, **fk):
      seen.append(ext_params)
      out = fit(*fa, ext_params=ext_params, **fk)
      seen.append(out[2]["params"])
      return out
    return wrapped

  monkeypatch.setattr(train, "make_fit", spy)
  for warm in (True, False):
    seen.clear()
    c = digits.get_config("ll4al,smoke")
    c.al.warm_start = warm
    c.al.num_rounds = 1
    loop.run(c, str(tmp_path / str(warm)))
    assert seen[0] is None and len(seen) == 4
    if warm:  # round 1 starts from round 0's trained module
      jax.tree.map(np.testing.assert_array_equal, seen[2], seen[1])
    else:
      assert seen[2] is None
