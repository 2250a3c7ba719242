"""Test metrics against NumPy on a padded test set."""

import jax.numpy as jnp
import numpy as np

from al_jax import data, evaluate, sharding


class Identity:
  @staticmethod
  def apply(params, rest, x):
    del params, rest
    return x, {"pre_logits": x, "stages": []}


def np_metrics(logits, y, bins=15):
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  pred, conf = p.argmax(-1), p.max(-1)
  correct = pred == y
  ece = 0.0
  for b in range(bins):
    lo, hi = b / bins, (b + 1) / bins
    m = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
    if m.any():
      ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
  return {"accuracy": correct.mean(), "nll": -np.log(p[np.arange(len(y)), y]).mean(), "ece": ece}


def test_metrics_match_numpy_and_ignore_padding(devices):
  del devices
  rng = np.random.default_rng(0)
  logits = (rng.normal(size=(37, 4)) * 2).astype(np.float32)
  y = rng.integers(0, 4, 37).astype(np.int32)
  xp, valid = data.pad_rows(logits, 16)
  yp, _ = data.pad_rows(y, 16)
  xp[37:] = 100.0  # padding rows must not count
  mesh = sharding.make_mesh([("data", 8)])
  ev = evaluate.make_evaluate(Identity(), 16, mesh)
  got = ev(None, None, *(sharding.shard_rows(mesh, a) for a in (xp, yp, valid)))
  ref = np_metrics(logits.astype(np.float64), y)
  for k in ref:
    np.testing.assert_allclose(float(got[k]), ref[k], rtol=1e-4, atol=1e-6)


def test_ece_is_zero_when_confidence_equals_accuracy():
  probs = jnp.array([[0.75, 0.25]] * 4)
  labels = jnp.array([0, 0, 0, 1])  # 75% correct at confidence 0.75
  assert float(evaluate.calibration_error(probs, labels, jnp.ones(4, bool))) < 1e-6
