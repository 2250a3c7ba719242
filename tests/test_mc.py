"""Consistent MC dropout and the MC reductions against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import mc, models, sharding


@pytest.fixture(scope="module")
def mlp():
  fns = models.build("mlp", (6,), 4, hidden=(16, 16), dropout=0.5)
  params, rest = fns.init(jax.random.key(0))
  x = np.asarray(jax.random.normal(jax.random.key(1), (48, 6)), np.float32)
  return fns, params, rest, x


def test_sample_k_is_one_network_whatever_the_batch(mlp):
  fns, params, rest, x = mlp
  key = jax.random.key(7)
  whole = mc.log_probs(fns, params, rest, jnp.asarray(x), key, 5)
  assert whole.shape == (48, 5, 4)
  # Two other batchings of the same rows give the same K networks.
  for bs in (8, 16):
    split = jax.jit(lambda xx, bs=bs: mc.pool_log_probs(fns, params, rest, xx, key, 5, bs))(x)
    np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-6)
  one_row = mc.log_probs(fns, params, rest, jnp.asarray(x[3:4]), key, 5)
  np.testing.assert_allclose(one_row[0], whole[3], rtol=1e-5, atol=1e-6)
  # Sample k uses fold_in(key, k): a single network on its own matches.
  k2 = jax.nn.log_softmax(fns.apply_mc(params, rest, jnp.asarray(x), jax.random.fold_in(key, 2))[0])
  np.testing.assert_allclose(whole[:, 2], k2, rtol=1e-5, atol=1e-6)
  # The K networks really differ (dropout is on), and a new key changes them.
  assert float(jnp.abs(whole[:, 0] - whole[:, 1]).max()) > 1e-3
  other = mc.log_probs(fns, params, rest, jnp.asarray(x), jax.random.key(8), 5)
  assert float(jnp.abs(other - whole).max()) > 1e-3
  # Running the K networks vmapped in pairs changes nothing.
  paired = mc.log_probs(fns, params, rest, jnp.asarray(x), key, 5, samples_per_pass=2)
  np.testing.assert_allclose(paired, whole, rtol=1e-5, atol=1e-6)


def test_one_vs_eight_devices_identical(mlp, devices):
  del devices
  fns, params, rest, x = mlp
  key = jax.random.key(3)
  outs = []
  for n in (1, 8):
    mesh = sharding.make_mesh([("data", n)])
    xs = sharding.shard_rows(mesh, x)
    f = jax.jit(lambda xx, mesh=mesh: mc.pool_log_probs(fns, params, rest, xx, key, 6, 16, mesh))
    outs.append(np.asarray(f(xs)))
  # Same K networks on both meshes. Not bit-identical: XLA's CPU matmul rounds
  # differently for a 2-row shard than a 16-row batch (~1e-7 relative), while a
  # different dropout mask would move log-probs by ~1e-1.
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
  assert float(np.abs(outs[0] - outs[1]).max()) < 1e-5


def test_cnn_masks_are_shared_across_batches():
  fns = models.build("cnn", (10, 10, 1), 3, filters=4, kernel_size=3, dense=8)
  params, rest = fns.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (12, 10, 10, 1))
  key = jax.random.key(5)
  whole = mc.log_probs(fns, params, rest, x, key, 3)
  halves = jnp.concatenate([mc.log_probs(fns, params, rest, x[:5], key, 3),
                            mc.log_probs(fns, params, rest, x[5:], key, 3)])
  np.testing.assert_allclose(halves, whole, rtol=1e-5, atol=1e-6)


def np_reductions(logp):
  """Slow float64 reference: loops over examples and samples."""
  p = np.exp(logp.astype(np.float64))
  n, k, c = p.shape
  out = {name: np.zeros(n) for name in ("pe", "ee", "mi", "lc", "vr", "ms")}
  for i in range(n):
    mean = p[i].mean(0)
    ent = lambda q: -sum(v * np.log(v) for v in q if v > 0)
    out["pe"][i] = ent(mean)
    out["ee"][i] = np.mean([ent(p[i, j]) for j in range(k)])
    out["mi"][i] = out["pe"][i] - out["ee"][i]
    out["lc"][i] = 1 - mean.max()
    votes = np.bincount(p[i].argmax(1), minlength=c)
    out["vr"][i] = 1 - votes.max() / k
    out["ms"][i] = np.std(p[i], axis=0).mean()
  return out


def random_logp(seed, n=30, k=7, c=5, scale=2.0):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(n, k, c)) * scale
  logits[0, :, 0] = 300.0  # p = 0 entries: no NaN.
  return np.asarray(jax.nn.log_softmax(jnp.asarray(logits, jnp.float32)))


def test_reductions_match_numpy():
  logp = random_logp(0)
  ref = np_reductions(logp)
  got = {"pe": mc.predictive_entropy(logp), "ee": mc.expected_entropy(logp),
         "mi": mc.mutual_information(logp), "lc": mc.least_confidence(logp),
         "vr": mc.variation_ratios(logp), "ms": mc.mean_std(logp)}
  for name, val in got.items():
    assert np.all(np.isfinite(val)), name
    np.testing.assert_allclose(val, ref[name], rtol=1e-4, atol=2e-6, err_msg=name)


def test_per_example_masks_are_keyed_by_sample_and_global_id(mlp, devices):
  """Example i of sample k uses fold_in(fold_in(key, k), id_i), under any batching or mesh."""
  del devices
  fns, params, rest, x = mlp
  key = jax.random.key(4)
  # Global ids that are not positions: a mask keyed by position would differ.
  ids = np.asarray(np.random.default_rng(0).permutation(1000)[:48], np.int32)
  whole = np.asarray(mc.log_probs(fns, params, rest, jnp.asarray(x), key, 5, ids=jnp.asarray(ids)))
  for k in (0, 3):
    for i in (0, 17, 47):
      one = fns.apply_mc(params, rest, jnp.asarray(x[i:i + 1]),
                         jax.random.fold_in(jax.random.fold_in(key, k), int(ids[i])))[0]
      np.testing.assert_allclose(whole[i, k], jax.nn.log_softmax(one[0]), rtol=1e-5, atol=1e-6)
  # Reversed rows with their ids: the same per-example values.
  rev = mc.log_probs(fns, params, rest, jnp.asarray(x[::-1]), key, 5, ids=jnp.asarray(ids[::-1]))
  np.testing.assert_allclose(np.asarray(rev)[::-1], whole, rtol=1e-5, atol=1e-6)
  for n_dev, bs in ((1, 48), (1, 8), (8, 16), (8, 8)):
    mesh = sharding.make_mesh([("data", n_dev)])
    f = jax.jit(lambda xx, ii, mesh=mesh, bs=bs: mc.pool_log_probs(
        fns, params, rest, xx, key, 5, bs, mesh, ids=ii))
    got = f(sharding.shard_rows(mesh, x), sharding.shard_rows(mesh, ids))
    np.testing.assert_allclose(np.asarray(got), whole, rtol=1e-5, atol=1e-6)


def test_per_example_masks_differ_across_examples(mlp):
  fns, params, rest, x = mlp
  key = jax.random.key(5)
  same = jnp.asarray(np.repeat(x[:1], 16, 0))  # 16 copies of one input.
  ids = jnp.arange(16, dtype=jnp.int32) + 300
  per = np.asarray(mc.log_probs(fns, params, rest, same, key, 4, ids=ids))
  shared = np.asarray(mc.log_probs(fns, params, rest, same, key, 4))
  # Shared: every copy sees sample k's one network.
  np.testing.assert_allclose(shared, np.broadcast_to(shared[:1], shared.shape), atol=1e-6)
  # Per example: every pair of copies differs in every sample.
  for k in range(4):
    d = np.abs(per[:, None, k] - per[None, :, k]).max(-1)
    assert (d + np.eye(16) > 1e-3).all(), (k, d.min())
  # Same id, same masks: the id (not the position) is the key.
  again = np.asarray(mc.log_probs(fns, params, rest, same[:3], key, 4, ids=ids[5:8]))
  np.testing.assert_allclose(again, per[5:8], rtol=1e-5, atol=1e-6)


def test_mask_scheme_is_validated_and_needs_ids():
  with pytest.raises(ValueError, match="mask"):
    mc.check_mask("per_batch")
  with pytest.raises(ValueError, match='batch\\["ids"\\]'):
    mc.batch_ids({"x": jnp.zeros((2, 3))}, "per_example")
  assert mc.batch_ids({"x": jnp.zeros((2, 3))}, "shared") is None


def near_agreeing_logits(noise, seed=0, n=2000, k=20, c=10):
  """Networks that nearly agree: a shared logit vector plus per-sample noise."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n, 1, c)) * 3
  scale = rng.uniform(0.2, 1.0, size=(n, 1, 1))  # Spread the MI over the pool.
  return base + noise * scale * rng.normal(size=(n, k, c))


def float64_mi_and_mean_std(logits):
  z = logits - logits.max(-1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  p = np.exp(logp)
  mean = p.mean(1)
  ent = lambda q: -np.sum(q * np.log(q), -1)
  return ent(mean) - ent(p).mean(1), p.std(1).mean(-1)


@pytest.mark.parametrize("noise", [1e-3, 1e-4])
def test_bald_and_mean_std_top_50_survive_float32_cancellation(noise):
  """H[mean] - E H and E[p^2] - E[p]^2 in float32 lose these rankings (11 and 37 of
  50 equal at noise 1e-3, about 0 at 1e-4); the stable forms keep them."""
  logits = near_agreeing_logits(noise)
  mi64, ms64 = float64_mi_and_mean_std(logits)
  logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32))
  mi, ms = np.asarray(mc.mutual_information(logp)), np.asarray(mc.mean_std(logp))
  top = lambda s: set(np.argsort(-s)[:50].tolist())
  assert len(top(mi) & top(mi64)) >= 48
  assert len(top(ms) & top(ms64)) >= 48
  assert np.all(mi >= 0)  # Every KL term is non-negative.
  # The inputs' own float32 rounding bounds the agreement (median 4e-4 at 1e-4).
  assert np.median(np.abs(mi / mi64 - 1)) < 2e-3
  assert np.median(np.abs(ms / ms64 - 1)) < 2e-3
