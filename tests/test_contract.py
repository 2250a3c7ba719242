"""The strategy contract, for EVERY registered strategy, without the loop.

A padded pool whose global ids differ from positions, a labelled set, and a
budget equal to the number of unlabelled rows (so a strategy must return
exactly the unlabelled rows): the selection must be `budget` unique global
ids, never a labelled row, never padding. Strategies with a training
extension are trained through `train.make_fit` and get its state as `ext`.

The label-leak test trains and selects twice, with different oracle labels
on the unlabelled rows; any strategy (score, select or extension hook) that
read one of those labels would return different ids or scores.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from al_jax import models, sharding, strategies, train
from al_jax.strategies.base import PoolView, TrainExtension

N_PAD, N_VALID, N_LAB, NUM_CLASSES, ID_OFFSET = 48, 40, 10, 3, 1000
BUDGET = N_VALID - N_LAB  # every unlabelled row
SCORE_BATCH = 16

# Keywords that keep each strategy's inner loops tiny (all others default).
FAST_KW = {
    "coreset_mip": dict(time_limit=5.0),
    "kmeans": dict(num_iters=5),
    "typiclust": dict(min_cluster_size=2, knn=3, num_iters=5),
    "probcover": dict(num_iters=5),
    "dfal": dict(max_iter=5),
    "alfa_mix": dict(kmeans_iters=3),
    "bayesian_lc": dict(num_samples=3),
    "bayesian_entropy": dict(num_samples=3),
    "bald": dict(num_samples=3),
    "variation_ratios": dict(num_samples=3),
    "mean_std": dict(num_samples=3),
    "power_bald": dict(num_samples=3),
    "power_entropy": dict(num_samples=3),
    "batchbald": dict(num_samples=3, num_configs=8, refine=((8, 32),), chunk_size=16),
    "egl": dict(microbatch_size=8),
    "grand": dict(microbatch_size=8),
    "isal": dict(depth=3, repeats=1, hvp_batch_size=8, val_size=8),
    "ll4al": dict(hidden=4),
    "uncertain_gcn": dict(hidden=8, num_steps=3),
    "core_gcn": dict(hidden=8, num_steps=3),
    "vaal": dict(z_dim=4, dense=8, disc_hidden=(8,), num_steps=3, batch_size=8, eval_batch=16),
    "sraal": dict(z_dim=4, dense=8, disc_hidden=(8,), cls_hidden=(8,), num_steps=3,
                  batch_size=8, eval_batch=16),
    "ta_vaal": dict(z_dim=4, dense=8, disc_hidden=(8,), num_steps=3, batch_size=8,
                    eval_batch=16, loss_hidden=4),
}
NAMES = sorted(strategies.STRATEGIES)
WITH_EXTENSION = ("forgetting", "isal", "ll4al", "ta_vaal", "waal")


def fns():
  # 8x8x1 inputs so the image-VAE strategies run; dropout for the MC ones.
  return models.get("mlp", (8, 8, 1), NUM_CLASSES, hidden=(8,), dropout=0.2)


def pool_arrays(seed=0):
  """x [N_PAD, 8, 8, 1], oracle labels y (-1 on padding), labelled mask."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(N_PAD, 8, 8, 1)).astype(np.float32)
  valid = np.arange(N_PAD) < N_VALID
  y = np.where(valid, rng.integers(0, NUM_CLASSES, N_PAD), -1).astype(np.int32)
  labelled = np.zeros(N_PAD, bool)
  labelled[rng.choice(N_VALID, N_LAB, replace=False)] = True
  return x, y, valid, labelled


def view(y, valid, labelled):
  # Reversed ids: neither positions nor positions plus a constant.
  ids = np.where(valid, ID_OFFSET + N_PAD - np.arange(N_PAD), -1).astype(np.int32)
  return PoolView(*(jnp.asarray(a) for a in (ids, valid, labelled,
                                               np.where(labelled, y, -1).astype(np.int32))))


def train_cfg():
  return ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=1e-2, batch_size=8, num_epochs=2, min_steps=0))


_FITTED = {}


def fitted(name, strat, y, labelled, x):
  """(params, rest, ext) after training; shared by strategies without an extension."""
  key = (name if strat.extension is not None else None, y.tobytes())
  if key not in _FITTED:
    f = fns()
    fit = train.make_fit(f, train_cfg(), sharding.make_mesh([("data", 1)]),
                         extension=strat.extension)
    params, rest = f.init(jax.random.key(0))
    _FITTED[key] = fit(params, rest, jnp.asarray(x), jnp.asarray(y), jnp.asarray(labelled),
                       jax.random.key(1))[:3]
  return _FITTED[key]


def run_strategy(name, y, budget=BUDGET):
  """Trains (with the strategy's extension), scores and selects; host arrays."""
  strat = strategies.get(name, fns(), **FAST_KW.get(name, {}))
  x, _, valid, labelled = pool_arrays()
  params, rest, ext = fitted(name, strat, y, labelled, x)
  assert (ext is None) == (strat.extension is None)
  pool = view(y, valid, labelled)
  # As the loop: batches carry the rows' global ids (per-example MC masks).
  feats = jax.jit(lambda p, r, xx, ii, k, e: sharding.chunked_map(
      lambda b: strat.score(p, r, b, k, e), {"x": xx, "ids": ii}, SCORE_BATCH))(
          params, rest, jnp.asarray(x), pool.ids, jax.random.key(2), ext)
  select = jax.jit(strat.select, static_argnums=2) if strat.jit_select else strat.select
  ids, scores = select(feats, pool, budget, jax.random.key(3), ext)
  return np.asarray(sharding.to_host(ids)), np.asarray(sharding.to_host(scores))


@pytest.mark.parametrize("name", NAMES)
def test_selection_is_the_unlabelled_ids(name):
  x, y, valid, labelled = pool_arrays()
  del x
  ids, scores = run_strategy(name, y)
  assert ids.shape == (BUDGET,) and scores.shape == (BUDGET,), (ids.shape, scores.shape)
  pool = view(y, valid, labelled)
  want = np.asarray(pool.ids)[valid & ~labelled]
  assert len(set(ids.tolist())) == BUDGET, f"duplicate ids {sorted(ids.tolist())}"
  assert not set(ids.tolist()) & set(np.asarray(pool.ids)[labelled].tolist()), "labelled ids"
  assert -1 not in ids, "padding rows"
  # Budget = all unlabelled rows: the selection is exactly their global ids
  # (a strategy returning positions fails here).
  np.testing.assert_array_equal(np.sort(ids), np.sort(want))


def test_every_registered_strategy_is_covered():
  # FAST_KW and WITH_EXTENSION must name registered strategies only, and the
  # extension list must be exactly the strategies that have one.
  assert set(FAST_KW) <= set(NAMES)
  with_ext = {n for n in NAMES
              if strategies.get(n, fns(), **FAST_KW.get(n, {})).extension is not None}
  assert with_ext == set(WITH_EXTENSION)


# Without an extension, no code path hands a strategy an unlabelled row's
# label (score sees x, select a PoolView); those run under `-m slow`.
@pytest.mark.parametrize("name", [n if n in WITH_EXTENSION else pytest.param(
    n, marks=pytest.mark.slow) for n in NAMES])
def test_unlabelled_labels_are_never_read(name):
  # Budget below the unlabelled count, so the choice among them matters.
  _, y, valid, labelled = pool_arrays()
  other = np.where(valid & ~labelled, (y + 1) % NUM_CLASSES, y).astype(np.int32)
  assert (other != y).sum() == N_VALID - N_LAB
  ids_a, scores_a = run_strategy(name, y, budget=7)
  ids_b, scores_b = run_strategy(name, other, budget=7)
  np.testing.assert_array_equal(ids_a, ids_b)
  np.testing.assert_array_equal(scores_a, scores_b)


def test_hooks_see_only_labelled_labels():
  def after_epoch(params, rest, ext, x, y, labelled, epoch):
    del params, rest, x, labelled, epoch
    return {**ext, "y_epoch": y}

  def after_fit(params, rest, ext, x, y, labelled):
    del params, rest, x, labelled
    return {**ext, "y_fit": y}

  ext_def = TrainExtension(init=lambda key, p, r, x: {"y_epoch": jnp.zeros(len(x), jnp.int32),
                                                      "y_fit": jnp.zeros(len(x), jnp.int32)},
                           after_epoch=after_epoch, after_fit=after_fit)
  f = fns()
  x, y, _, labelled = pool_arrays()
  fit = train.make_fit(f, train_cfg(), sharding.make_mesh([("data", 1)]), extension=ext_def)
  params, rest = f.init(jax.random.key(0))
  _, _, ext, _ = fit(params, rest, jnp.asarray(x), jnp.asarray(y), jnp.asarray(labelled),
                     jax.random.key(1))
  want = np.where(labelled, y, -1)
  for k in ("y_epoch", "y_fit"):
    np.testing.assert_array_equal(np.asarray(ext[k]), want, err_msg=k)
