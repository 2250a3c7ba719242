"""GraNd / EL2N against NumPy and per-example loops; the prune mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from al_jax import models, per_example, prune, sharding, strategies
from al_jax.strategies import data_diet


@pytest.fixture(scope="module")
def mlp():
  fns = models.build("mlp", (4,), 3, hidden=(5,))
  params, rest = fns.init(jax.random.key(0))
  x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
  return fns, params, rest, x


def np_el2n(fns, params, rest, x, y):
  logits = np.asarray(fns.apply(params, rest, jnp.asarray(x))[0], np.float64)
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  return np.linalg.norm(p - np.eye(p.shape[1])[y], axis=1)


def loop_grand(fns, params, rest, x, y):
  grad = jax.jit(jax.grad(per_example.example_loss(fns)))
  return np.array([np.linalg.norm(ravel_pytree(grad(params, rest, jnp.asarray(x[i]), int(y[i])))[0])
                   for i in range(len(y))])


def test_scores_with_predicted_labels_at_trained_and_at_init(mlp):
  fns, params, rest, x = mlp
  yhat = np.asarray(jnp.argmax(fns.apply(params, rest, jnp.asarray(x))[0], -1))
  key = jax.random.key(5)
  batch = {"x": jnp.asarray(x)}
  el2n = strategies.get("el2n", fns).score(params, rest, batch, key)
  np.testing.assert_allclose(el2n, np_el2n(fns, params, rest, x, yhat), rtol=1e-5)
  grand = jax.jit(lambda p: strategies.get("grand", fns, microbatch_size=4).score(
      p, rest, batch, key))(params)
  np.testing.assert_allclose(grand, loop_grand(fns, params, rest, x, yhat), rtol=1e-5)
  # at="init": labels from the trained model, scores averaged over 2 fresh
  # inits (the averaging is shared by both scores: EL2N, the cheaper, checks it).
  inits = [fns.init(jax.random.fold_in(key, s)) for s in range(2)]
  got = jax.jit(lambda p, k: strategies.get("el2n", fns, at="init", num_inits=2).score(
      p, rest, batch, k))(params, key)
  ref = np.mean([np_el2n(fns, p0, r0, x, yhat) for p0, r0 in inits], axis=0)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_true_label_scores_differ_from_predicted(mlp):
  fns, params, rest, x = mlp
  y = jnp.array([0, 1, 2, 0, 1, 2])
  np.testing.assert_allclose(data_diet.el2n_scores(fns, params, rest, jnp.asarray(x), y),
                             np_el2n(fns, params, rest, x, np.asarray(y)), rtol=1e-5)


@pytest.mark.parametrize("kw, match", [
    (dict(at="later"), "at must be"), (dict(num_inits=0), "num_inits"),
    (dict(at="trained", num_inits=3), "num_inits must be 1"),
    (dict(microbatch_size=0), "microbatch_size")])
def test_bad_options_fail_loudly(mlp, kw, match):
  with pytest.raises(ValueError, match=match):
    strategies.get("grand", mlp[0], **kw)


def test_prune_mode_reports_accuracies_on_tiny_digits(monkeypatch):
  """Drops the LOWEST-scoring half, trains on exactly the kept / random / full rows,
  and reports each model's test accuracy."""
  from configs import digits
  from al_jax import train
  c = digits.get_config("el2n,smoke")
  c.data.max_train, c.data.max_test = 96, 64
  c.mesh = [("data", 1)]
  seen = {"masks": [], "scores": None, "acc": []}
  real_scores, real_fit, real_eval = prune.score_rows, train.make_fit, prune.evaluate.make_evaluate

  def spy_scores(*a, **kw):
    seen["scores"] = real_scores(*a, **kw)
    return seen["scores"]

  def spy_make_fit(*a, **kw):
    fit = real_fit(*a, **kw)

    def wrapped(params, rest, x, y, labelled, key, **fkw):
      seen["masks"].append(np.asarray(sharding.to_host(labelled)))
      return fit(params, rest, x, y, labelled, key, **fkw)
    return wrapped

  def spy_eval(*a, **kw):
    ev = real_eval(*a, **kw)

    def wrapped(*ea):
      out = ev(*ea)
      seen["acc"].append(float(out["accuracy"]))
      return out
    return wrapped

  monkeypatch.setattr(prune, "score_rows", spy_scores)
  monkeypatch.setattr(prune.train, "make_fit", spy_make_fit)
  monkeypatch.setattr(prune.evaluate, "make_evaluate", spy_eval)
  r = prune.run(c, 0.5, "el2n", num_seeds=2, score_epochs=0)  # at init: one compile less
  assert r["kept"] == 48 and r["pool"] == 96
  keep, rand, full = seen["masks"][-3:]
  scores = seen["scores"]
  valid = np.isfinite(scores)
  assert valid.sum() == 96 and keep.sum() == rand.sum() == 48 and (full == valid).all()
  # The kept rows are the 48 highest scores: every dropped row scores <= every kept one.
  assert scores[keep].min() >= scores[valid & ~keep].max()
  assert not (rand == keep).all() and not (rand & ~valid).any()
  assert seen["acc"][-3:] == [r["accuracy"], r["random_accuracy"], r["full_accuracy"]]
  for k in ("accuracy", "random_accuracy", "full_accuracy"):
    assert 0.0 <= r[k] <= 1.0
  with pytest.raises(ValueError, match="fraction"):
    prune.run(c, 1.0)
  with pytest.raises(ValueError, match="Unknown prune method"):
    prune.run(c, 0.5, "loss")


def test_prune_grand_scores_use_taps_equal_to_vmap_grad(monkeypatch):
  """prune's GraNd scores come from the layer taps (no vmap(grad) call) and
  equal the vmap(grad) reference on a tiny digits pool."""
  from configs import digits
  c = digits.get_config("grand,smoke")
  c.data.max_train, c.data.max_test = 40, 16
  c.mesh = [("data", 1)]
  mesh, _, pool, score_bs, fns, _ = prune.loop.setup(c)
  ref = prune.score_rows(c, "grand", 1, 0, mesh, pool, score_bs, fns, path="vmap")

  def no_vmap(*a, **kw):
    raise AssertionError("prune's GraNd called vmap(grad)")
  monkeypatch.setattr(per_example, "grad_norms", no_vmap)
  got = prune.score_rows(c, "grand", 1, 0, mesh, pool, score_bs, fns)
  valid = np.isfinite(ref)
  assert valid.sum() == 40 and (np.isfinite(got) == valid).all()
  np.testing.assert_allclose(got[valid], ref[valid], rtol=1e-5)
