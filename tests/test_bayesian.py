"""MC-dropout top-k and Power strategies against NumPy references, and end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import mc, strategies
from tests.helpers import make_pool

TOP_K = ("bayesian_lc", "bayesian_entropy", "bald", "variation_ratios", "mean_std")
C = 4


class RandomLinearFns:
  """apply_mc(x, key) = x @ W(key): network k is a random linear map we can rebuild."""

  @staticmethod
  def apply_mc(params, rest, x, key):
    del params, rest
    return 3.0 * x @ jax.random.normal(key, (x.shape[-1], C))


def np_logp(x, key, k, ids=None):
  """[N, K, C] from the same networks, softmax in float64 NumPy.

  ids None: network k is W(fold_in(key, k)) for every row (shared masks);
  else row i of sample k uses W(fold_in(fold_in(key, k), ids[i])).
  """
  def w(kk):
    return np.asarray(jax.random.normal(kk, (x.shape[-1], C)), np.float64)

  out = np.zeros((len(x), k, C))
  for j in range(k):
    kj = jax.random.fold_in(key, j)
    for i in range(len(x)):
      wi = w(kj if ids is None else jax.random.fold_in(kj, int(ids[i]) & 0xFFFFFFFF))
      z = 3.0 * x[i].astype(np.float64) @ wi
      out[i, j] = z - z.max() - np.log(np.exp(z - z.max()).sum())
  return out


def np_score(name, logp):
  p = np.exp(logp)
  mean = p.mean(1)
  ent = lambda q: -np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), -1)
  if name == "bayesian_lc":
    return 1 - mean.max(-1)
  if name == "bayesian_entropy":
    return ent(mean)
  if name == "bald":
    return ent(mean) - ent(p).mean(1)
  if name == "variation_ratios":
    am = p.argmax(-1)
    return np.array([1 - np.bincount(r, minlength=C).max() / len(r) for r in am])
  if name == "mean_std":
    return p.std(1).mean(-1)
  raise ValueError(name)


def np_top(scores, pool, budget):
  """Global ids of the `budget` best unlabelled rows, ties to the lower position."""
  cand = [i for i in range(len(scores)) if pool.valid[i] and not pool.labelled[i]]
  cand.sort(key=lambda i: (-scores[i], i))
  return np.asarray(pool.ids)[np.array(cand[:budget])]


@pytest.mark.parametrize("mask", ["per_example", "shared"])
@pytest.mark.parametrize("name", TOP_K)
def test_top_k_strategies_match_numpy(name, mask):
  x = np.asarray(jax.random.normal(jax.random.key(0), (40, 3)), np.float32)
  key = jax.random.key(11)
  pool = make_pool(36, 40, 10, 1, id_offset=500)  # ids != positions
  strat = strategies.get(name, RandomLinearFns(), num_samples=9, mask=mask)
  got = np.asarray(jax.jit(strat.score)(None, None, {"x": x, "ids": pool.ids}, key))
  ref = np_score(name, np_logp(x, key, 9, None if mask == "shared" else np.asarray(pool.ids)))
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
  ids, vals = jax.jit(strat.select, static_argnums=2)(jnp.asarray(got), pool, 7, None)
  ids = np.asarray(ids)
  np.testing.assert_array_equal(ids, np_top(got, pool, 7))
  pos = ids - 500
  np.testing.assert_allclose(vals, got[pos])
  # Against the float64 reference, tie-aware (variation ratios has many exact
  # ties): the picks hold the 7 best reference scores, and none is worse than
  # an unpicked candidate.
  unl = np.asarray(pool.valid & ~pool.labelled)
  rest_best = np.max(np.where(unl & ~np.isin(np.arange(40), pos), ref, -np.inf))
  assert ref[pos].min() >= rest_best - 1e-6, (ref[pos], rest_best)
  np.testing.assert_allclose(np.sort(ref[pos]), np.sort(ref[np_top(ref, pool, 7) - 500]),
                             atol=1e-6)
  if name != "variation_ratios":  # No ties: the very same ids.
    np.testing.assert_array_equal(ids, np_top(ref, pool, 7))


def test_variation_ratios_reference_without_ties():
  """Votes against a brute-force count on inputs where every row has its own score."""
  k = 8
  rng = np.random.default_rng(0)
  n = k // 2 + 1  # Modal counts k/2 .. k: all distinct.
  logits = np.full((n, k, C), -5.0)
  for i in range(n):
    top = k - i  # Row i: `top` networks vote class 0, the rest split over 1..C-1.
    logits[i, :top, 0] = 5.0
    for j in range(top, k):
      logits[i, j, 1 + (j % (C - 1))] = 5.0
  logits += rng.normal(size=logits.shape) * 0.1
  logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32))
  got = np.asarray(mc.variation_ratios(logp))
  want = np.array([1 - max(np.bincount(np.argmax(logits[i], -1), minlength=C)) / k
                   for i in range(n)])
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert len(np.unique(want)) == n
  pool = make_pool(n, n, 0, 0, id_offset=40)
  ids, _ = strategies.get("variation_ratios", None).select(jnp.asarray(got), pool, 3, None)
  np.testing.assert_array_equal(np.asarray(ids), 40 + np.argsort(-want)[:3])


def random_bald(seed, n=40):
  rng = np.random.default_rng(seed)
  logp = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(n, 8, C)) * 2, jnp.float32))
  return logp, np.asarray(mc.mutual_information(logp))


@pytest.mark.parametrize("name", ["power_bald", "power_entropy"])
def test_power_with_huge_beta_is_the_top_k(name):
  logp, bald = random_bald(0)
  reduce = mc.mutual_information if name == "power_bald" else mc.predictive_entropy
  s = np.asarray(reduce(logp))
  pool = make_pool(36, 40, 10, 2)
  strat = strategies.get(name, None, beta=1e6)
  select = jax.jit(strat.select, static_argnums=2)
  for seed in range(5):
    ids, vals = select(jnp.log(jnp.asarray(s)), pool, 6, jax.random.key(seed))
    np.testing.assert_array_equal(np.sort(ids), np.sort(np_top(s, pool, 6)))
    np.testing.assert_allclose(vals, s[np.asarray(ids)], rtol=1e-5)
  del bald


def test_power_bald_samples_proportional_to_bald_power():
  """One pick: P(i) = BALD_i^beta / sum_j BALD_j^beta over the unlabelled rows."""
  _, bald = random_bald(1, n=12)
  pool = make_pool(10, 12, 3, 3)
  unl = np.asarray(pool.valid & ~pool.labelled)
  beta = 2.0
  strat = strategies.get("power_bald", None, beta=beta)
  log_s = jnp.log(jnp.maximum(jnp.asarray(bald), 1e-12))
  draws = jax.jit(jax.vmap(lambda k: strat.select(log_s, pool, 1, k)[0][0]))(
      jax.random.split(jax.random.key(0), 20000))
  freq = np.bincount(np.asarray(draws), minlength=12) / 20000
  want = np.where(unl, np.maximum(bald, 1e-12) ** beta, 0.0)
  want /= want.sum()
  np.testing.assert_allclose(freq, want, atol=0.015)
  assert freq[~unl].sum() == 0


@pytest.mark.parametrize("name", ["power_bald", "power_entropy"])
def test_power_ids_unique_unlabelled_and_seeded(name):
  logp, _ = random_bald(2, n=64)
  pool = make_pool(50, 64, 20, 4)
  strat = strategies.get(name, None)
  s = jnp.log(jnp.maximum(mc.mutual_information(logp), 1e-12))
  select = jax.jit(strat.select, static_argnums=2)
  a, _ = select(s, pool, 25, jax.random.key(1))
  b, _ = select(s, pool, 25, jax.random.key(1))
  c, _ = select(s, pool, 25, jax.random.key(2))
  a = np.asarray(a)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert len(set(a)) == 25
  assert np.all(np.asarray(pool.valid)[a]) and not np.any(np.asarray(pool.labelled)[a])


def test_power_rejects_nonpositive_beta():
  with pytest.raises(ValueError, match="beta"):
    strategies.get("power_bald", None, beta=0.0)


def test_unrolled_epochs_train_exactly_like_the_fori_loop(devices):
  """train.unroll_steps (used by configs/bald_mnist.py on CPU) changes nothing but speed."""
  del devices
  import ml_collections
  from al_jax import data, models, sharding, train
  c = ml_collections.ConfigDict(dict(name="synthetic", num_examples=96, num_classes=3,
                                     shape=(4,), test_size=0.25, normalize=True))
  ds = data.load(c, 0)
  pool = data.make_pool(ds.x_train, ds.y_train, 16)
  mesh = sharding.make_mesh([("data", -1)])
  fns = models.build("mlp", (4,), 3, hidden=(16,), dropout=0.3)
  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  labelled = np.zeros(len(pool.y), bool)
  labelled[np.flatnonzero(pool.valid)[:37]] = True
  lab = sharding.shard_rows(mesh, labelled)
  out = []
  for unroll in (False, True):
    tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                          num_epochs=3, min_steps=0, weight_decay=0.0,
                                          unroll_steps=unroll))
    fit = train.make_fit(fns, tcfg, mesh)
    params, rest = fns.init(jax.random.key(0))
    params, _, _, info = fit(params, rest, x, y, lab, jax.random.key(1))
    assert info.steps == 9
    out.append(params)
  for a, b in zip(jax.tree.leaves(out[0]), jax.tree.leaves(out[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mc_strategy_on_a_dropout_free_model_stops_before_training(tmp_path):
  """BALD on the default (dropout 0) MLP would score rounding noise: one clear error."""
  from tests.test_loop import get
  from al_jax import loop
  w = tmp_path / "w"
  with pytest.raises(ValueError, match=r"'bald'.*--config\.model\.dropout=0\.5"):
    loop.run(get(**{"strategy.name": "bald"}), str(w))
  assert not w.exists()
  # The CNN names both of its rates; a non-MC strategy and dropout > 0 pass.
  with pytest.raises(ValueError, match="dropout_conv=0.5 or --config.model.dropout_dense=0.5"):
    strategies.check_mc_dropout("batchbald", "cnn", (8, 8, 1), 3, filters=2, kernel_size=3,
                                dense=4, dropout_conv=0.0, dropout_dense=0.0)
  strategies.check_mc_dropout("batchbald", "cnn", (8, 8, 1), 3, filters=2, kernel_size=3,
                              dense=4, dropout_conv=0.0, dropout_dense=0.5)
  strategies.check_mc_dropout("entropy", "mlp", (6,), 3, dropout=0.0)
  strategies.check_mc_dropout("power_bald", "mlp", (6,), 3, dropout=0.1)
  for name in ("bayesian_lc", "variation_ratios", "mean_std", "power_entropy"):
    with pytest.raises(ValueError, match=name):
      strategies.check_mc_dropout(name, "mlp", (6,), 3, dropout=0.0)
