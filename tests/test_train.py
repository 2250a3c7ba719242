"""Training: learning happens, no recompiles between rounds, NaN fails loudly, extensions."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from al_jax import data, models, sharding, train


def setup(n=96, seed=0):
  c = ml_collections.ConfigDict(dict(name="synthetic", num_examples=n, num_classes=3,
                                     shape=(4,), test_size=0.25, normalize=True))
  ds = data.load(c, seed)
  pool = data.make_pool(ds.x_train, ds.y_train, 16)
  mesh = sharding.make_mesh([("data", -1)])
  fns = models.build("mlp", (4,), 3, hidden=(16,))
  tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                        num_epochs=3, min_steps=20, weight_decay=0.0))
  return pool, mesh, fns, tcfg


def test_training_learns_and_never_recompiles_across_rounds(devices):
  del devices
  pool, mesh, fns, tcfg = setup()
  fit = train.make_fit(fns, tcfg, mesh)
  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  rng = np.random.default_rng(0)
  labelled = np.zeros(len(pool.y), bool)
  accs = []
  for r, n_lab in enumerate([5, 21, 40]):  # three rounds of different labelled sizes
    labelled[rng.choice(np.flatnonzero(pool.valid & ~labelled), n_lab - labelled.sum(),
                        replace=False)] = True
    params, rest = fns.init(jax.random.key(r))
    params, rest, ext, info = fit(params, rest, x, y, sharding.shard_rows(mesh, labelled),
                                  jax.random.key(10 + r))
    assert ext is None
    accs.append(info.accuracy)
  assert fit.epoch._cache_size() == 1  # one trace for all three rounds
  assert accs[-1] > 0.9, accs  # separable blobs are learnt


def test_epoch_visits_each_labelled_row_once_with_weights():
  pool, mesh, fns, tcfg = setup()
  seen = []

  def spy_loss(params, rest, ext, batch, key, epoch):
    del ext, key, epoch
    (logits, _), new_rest = fns.apply_train(params, rest, batch["x"], jax.random.key(0))
    jax.debug.callback(lambda y, w: seen.append((np.asarray(y), np.asarray(w))),
                       batch["y"], batch["w"])
    return jnp.sum(logits * 0.0), (new_rest, logits)

  ext = train.TrainExtension(init=lambda *a: {}, loss=spy_loss)
  tcfg.num_epochs, tcfg.min_steps = 1, 0
  fit = train.make_fit(fns, tcfg, mesh, extension=ext)
  labelled = np.zeros(len(pool.y), bool)
  labelled[:21] = True
  params, rest = fns.init(jax.random.key(0))
  fit(params, rest, sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y),
      sharding.shard_rows(mesh, labelled), jax.random.key(1))
  assert len(seen) == 2  # ceil(21 / 16) steps
  w = np.concatenate([s[1] for s in seen])
  y = np.concatenate([s[0] for s in seen])[w > 0]
  assert w.sum() == 21
  np.testing.assert_array_equal(np.sort(y), np.sort(pool.y[:21]))


def test_nan_loss_is_a_clear_error():
  pool, mesh, fns, tcfg = setup()
  x = pool.x.copy()
  x[:] = np.nan
  fit = train.make_fit(fns, tcfg, mesh)
  params, rest = fns.init(jax.random.key(0))
  labelled = pool.valid.copy()
  with pytest.raises(FloatingPointError, match="non-finite.*learning_rate=0.01"):
    fit(params, rest, sharding.shard_rows(mesh, x), sharding.shard_rows(mesh, pool.y),
        sharding.shard_rows(mesh, labelled), jax.random.key(1))


def test_extension_params_train_and_hooks_run():
  pool, mesh, fns, tcfg = setup()
  import optax

  def init(key, params, rest, x):
    del key, params, rest
    return {"params": {"t": jnp.zeros(())}, "epochs": jnp.zeros((), jnp.int32),
            "steps": jnp.zeros((), jnp.int32), "unl_ok": jnp.ones((), bool),
            "rows": jnp.zeros((x.shape[0],))}

  def loss(params, rest, ext, batch, key, epoch):
    del epoch
    (logits, _), new_rest = fns.apply_train(params, rest, batch["x"], key)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
    # An extra parameter pulled towards 3.
    return train.weighted_mean(ce, batch["w"]) + (ext["params"]["t"] - 3.0) ** 2, (new_rest, logits)

  def after_step(params, rest, ext, batch, key, epoch):
    del params, rest, key, epoch
    return {**ext, "steps": ext["steps"] + 1, "unl_ok": ext["unl_ok"] & (batch["x_u"].shape == batch["x"].shape)}

  def after_epoch(params, rest, ext, x, y, labelled, epoch):
    del params, rest, x, y, labelled
    return {**ext, "epochs": ext["epochs"] + 1, "rows": ext["rows"].at[epoch].set(1.0)}

  ext_def = train.TrainExtension(init=init, loss=loss, tx=optax.sgd(0.1), after_step=after_step,
                                 after_epoch=after_epoch, needs_unlabelled=True)
  tcfg.num_epochs, tcfg.min_steps = 4, 0
  fit = train.make_fit(fns, tcfg, mesh, extension=ext_def)
  labelled = np.zeros(len(pool.y), bool)
  labelled[:32] = True
  params, rest = fns.init(jax.random.key(0))
  _, _, ext, info = fit(params, rest, sharding.shard_rows(mesh, pool.x),
                        sharding.shard_rows(mesh, pool.y), sharding.shard_rows(mesh, labelled),
                        jax.random.key(1))
  assert int(ext["epochs"]) == 4 and int(ext["steps"]) == info.steps == 8
  np.testing.assert_array_equal(np.asarray(ext["rows"])[:5], [1, 1, 1, 1, 0])
  # 8 SGD steps (lr 0.1) on (t-3)^2 from 0 shrink the error by 0.8 each.
  np.testing.assert_allclose(float(ext["params"]["t"]), 3.0 - 3.0 * 0.8**8, rtol=1e-5)


def test_augment_keeps_shape_and_flip_is_a_flip():
  x = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
  out = train.augment(x, jax.random.key(0), "flip")
  for a, b in zip(np.asarray(out), np.asarray(x)):
    assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])
  assert train.augment(x, jax.random.key(0), "flip_crop").shape == x.shape
  with pytest.raises(ValueError, match="Unknown data.augment 'rotate'"):
    train.augment(x, jax.random.key(0), "rotate")
