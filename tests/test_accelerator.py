"""Accelerator fixes: minibatch sharding in selects, deterministic-flag plumbing."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from al_jax import determinism, sharding


def test_constrain_rows_shards_under_a_mesh_and_is_a_no_op_without(devices):
  del devices
  mesh = sharding.make_mesh([("data", 8)])
  x = jnp.arange(16 * 3, dtype=jnp.float32).reshape(16, 3)
  f = jax.jit(lambda a: sharding.constrain_rows(a * 2.0))
  with jax.set_mesh(mesh):
    out = f(x)
  assert out.sharding.is_equivalent_to(NamedSharding(mesh, P("data", None)), 2)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x) * 2)
  plain = jax.jit(lambda a: sharding.constrain_rows(a * 2.0))(x)
  assert len(plain.sharding.device_set) == 1  # no mesh in context: untouched
  with jax.set_mesh(mesh):  # 6 rows do not split over 8 devices: untouched
    odd = jax.jit(lambda a: sharding.constrain_rows(a * 2.0))(x[:6])
  np.testing.assert_array_equal(np.asarray(odd), np.asarray(x[:6]) * 2)


def test_vaal_select_runs_under_the_loop_mesh(devices):
  # loop.run traces selects inside jax.set_mesh: VAAL's minibatches are
  # constrained to the data axis and the selection stays valid.
  del devices
  from al_jax import models, strategies
  from tests.helpers import make_pool
  fns = models.build("mlp", (4, 4, 1), 3, hidden=(8,))
  strat = strategies.get("vaal", fns, z_dim=4, channels=(), dense=8, disc_hidden=(8,),
                         num_steps=3, batch_size=8)
  mesh = sharding.make_mesh([("data", 8)])
  x = sharding.shard_rows(mesh, np.random.default_rng(0).normal(size=(64, 4, 4, 1)).astype(
      np.float32))
  pool = make_pool(60, 64, 10, 0)
  select = jax.jit(strat.select, static_argnums=2)
  with jax.set_mesh(mesh):
    ids, _ = select({"x": x}, pool, 5, jax.random.key(0))
  ids_plain, _ = jax.jit(strat.select, static_argnums=2)({"x": x}, pool, 5, jax.random.key(0))
  ids = np.asarray(ids)
  assert len(set(ids.tolist())) == 5 and not np.asarray(pool.labelled)[ids].any()
  assert (ids < 60).all()
  np.testing.assert_array_equal(np.sort(ids), np.sort(np.asarray(ids_plain)))


def test_determinism_apply_adds_the_flags_once(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  determinism.apply(False)
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"
  determinism.apply(True)
  determinism.apply(True)
  flags = os.environ["XLA_FLAGS"].split()
  assert flags[0] == "--xla_force_host_platform_device_count=8"
  assert [f for f in flags if f in determinism.FLAGS] == list(determinism.FLAGS)


def test_determinism_check_after_start_on_cpu_is_harmless(monkeypatch):
  import ml_collections
  monkeypatch.setenv("XLA_FLAGS", "")
  jax.devices()  # JAX has started (CPU): deterministic anyway, no error
  determinism.check(ml_collections.ConfigDict(dict(deterministic=True)))
  determinism.check(ml_collections.ConfigDict(dict(deterministic=False)))
  assert os.environ["XLA_FLAGS"] == ""  # too late to matter on CPU: left alone
