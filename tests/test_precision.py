"""Mixed precision (train.compute_dtype) and uint8 pools (data.pool_dtype)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import data, loop, models, precision
from configs import common


def digits_config(**over):
  c = common.base_config()
  c.progress = False
  c.model.hidden = (64,)
  c.al.initial_size = 400
  c.al.query_size = 40
  c.al.num_rounds = 1
  c.train.batch_size = 64
  c.train.num_epochs = 25
  c.train.min_steps = 0
  c.score.batch_size = 256
  c.eval.batch_size = 256
  for k, v in over.items():
    node, name = (c, k) if "." not in k else (c[k.split(".")[0]], k.split(".")[1])
    node[name] = v
  return c


def run(tmp_path, name, **over):
  summary = loop.run(digits_config(**over), str(tmp_path / name))
  with open(tmp_path / name / "selected.jsonl") as f:
    # The first selection (round -1 is the initial labelled set).
    ids = next(r for r in map(json.loads, f) if r["round"] >= 0)["ids"]
  with open(tmp_path / name / "metrics.jsonl") as f:
    recs = [json.loads(line) for line in f]
  summary["train_losses"] = [r["train_loss"] for r in recs]
  return summary, ids, [r["accuracy"] for r in recs]


def test_bfloat16_views_compute_in_bf16_and_return_float32():
  fns = models.build("mlp", (8, 8, 1), 10, hidden=(32,))
  bf = precision.with_compute_dtype(fns, "bfloat16")
  params, rest = fns.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (5, 8, 8, 1))
  lo, (hi, out) = fns.apply(params, rest, x)[0], bf.apply(params, rest, x)
  assert hi.dtype == jnp.float32 and out["pre_logits"].dtype == jnp.float32
  # Reference: the same network with params and input rounded to bf16 by hand.
  p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
  ref = fns.apply(p16, rest, x.astype(jnp.bfloat16))[0].astype(jnp.float32)
  np.testing.assert_array_equal(np.asarray(hi), np.asarray(ref))
  assert not np.array_equal(np.asarray(lo), np.asarray(hi))  # really lower precision
  np.testing.assert_allclose(np.asarray(lo), np.asarray(hi), atol=0.1)
  # Gradients w.r.t. the float32 params come back float32.
  g = jax.grad(lambda p: bf.apply_train(p, rest, x, jax.random.key(2))[0][0].sum())(params)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(g))
  assert precision.with_compute_dtype(fns, "float32") is fns
  with pytest.raises(ValueError, match="compute_dtype 'float16'"):
    precision.with_compute_dtype(fns, "float16")


def test_bfloat16_training_on_digits_matches_float32_within_one_point(tmp_path):
  s32, _, acc32 = run(tmp_path, "f32")
  s16, _, acc16 = run(tmp_path, "bf16", **{"train.compute_dtype": "bfloat16"})
  assert acc32[-1] > 0.9, acc32
  # The runs really differ in arithmetic (bf16 rounding changes the losses)...
  assert s32["train_losses"] != s16["train_losses"], (s32["train_losses"], s16["train_losses"])
  # ...yet reach the same test accuracy within 1 point in every round.
  for a, b in zip(acc32, acc16):
    assert abs(a - b) <= 0.01, (acc32, acc16)


def test_uint8_pool_normalises_like_the_float_pool():
  cfg = digits_config().data
  f = data.load(cfg, 0)
  cfg.pool_dtype = "uint8"
  u = data.load(cfg, 0)
  assert u.x_train.dtype == np.uint8 and u.x_train.nbytes * 4 == f.x_train.nbytes
  np.testing.assert_array_equal(u.y_train, f.y_train)
  to_float = jax.jit(data.normalizer(u))
  np.testing.assert_allclose(np.asarray(to_float(u.x_train)), f.x_train, rtol=0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(to_float(u.x_test)), f.x_test, rtol=0, atol=1e-5)
  assert data.normalizer(f) is None
  cfg.name = "synthetic"
  with pytest.raises(ValueError, match="'synthetic' is float"):
    data.load(cfg, 0)
  cfg.name, cfg.pool_dtype = "digits", "int4"
  with pytest.raises(ValueError, match="pool_dtype 'int4'"):
    data.load(cfg, 0)


def test_uint8_pool_run_selects_like_the_float_pool(tmp_path):
  _, ids32, acc32 = run(tmp_path, "f32")
  _, ids8, acc8 = run(tmp_path, "u8", **{"data.pool_dtype": "uint8"})
  for a, b in zip(acc32, acc8):
    assert abs(a - b) <= 0.005, (acc32, acc8)
  overlap = len(set(ids32) & set(ids8)) / len(ids32)
  assert overlap >= 0.9, (overlap, ids32, ids8)
