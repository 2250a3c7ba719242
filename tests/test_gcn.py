"""UncertainGCN / CoreGCN: graph and propagation against dense NumPy, training, queries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from al_jax import models, sharding, strategies
from al_jax.strategies import gcn
from tests import helpers


def np_adjacency(f):
  """The reference's aff_to_adj on the real nodes only (dense NumPy)."""
  adj = f @ f.T
  adj -= np.eye(len(f))
  adj = adj @ np.diag(1.0 / adj.sum(0))
  return adj + np.eye(len(f))


def np_gcn(g, adj, f):
  g = jax.tree.map(lambda a: np.asarray(a, np.float64), nnx.to_pure_dict(g))
  h = np.maximum(adj @ (f @ g["layer1"]["kernel"]) + g["layer1"]["bias"], 0)
  return (adj @ (h @ g["layer2"]["kernel"]) + g["bias2"])[:, 0], h


def make_pool(n, n_pad, n_lab, seed):
  return helpers.make_pool(n, n_pad, n_lab, seed, id_offset=100)  # ids != positions


def unit_rows(n, d, seed):
  f = np.abs(np.random.default_rng(seed).normal(size=(n, d)))  # ReLU features: >= 0
  return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


def test_graph_and_propagation_match_dense_numpy_and_ignore_padding():
  f = unit_rows(12, 5, 0)
  mask = np.arange(12) < 9
  f[~mask] = 7.0  # garbage in padding rows must not leak into real nodes
  adj = np.asarray(gcn.normalized_adjacency(jnp.asarray(f), jnp.asarray(mask)))
  ref = np_adjacency(f[:9].astype(np.float64))
  np.testing.assert_allclose(adj[:9, :9], ref, rtol=1e-5, atol=1e-6)
  assert not adj[9:].any() and not adj[:, 9:].any()
  net = gcn.gcn_net(5, 6)
  g, _ = net.init(jax.random.key(0))
  logit, h = gcn.gcn_apply(net, g, jnp.asarray(adj), jnp.asarray(f))
  ref_logit, ref_h = np_gcn(g, ref, f[:9].astype(np.float64))
  np.testing.assert_allclose(np.asarray(logit)[:9], ref_logit, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(h)[:9], ref_h, rtol=1e-4, atol=1e-5)


def test_loss_matches_numpy():
  logit = np.array([0.3, -1.2, 2.0, 0.1, -0.4], np.float32)
  lab = np.array([1, 0, 1, 0, 0], bool)
  unl = np.array([0, 1, 0, 1, 0], bool)  # the last row is padding
  s = 1 / (1 + np.exp(-logit.astype(np.float64)))
  ref = -np.mean(np.log(s[lab])) - 1.2 * np.mean(np.log(1 - s[unl]))
  np.testing.assert_allclose(float(gcn.gcn_loss(jnp.asarray(logit), jnp.asarray(lab),
                                                 jnp.asarray(unl), 1.2)), ref, rtol=1e-5)


def test_training_decreases_the_loss_and_separates_labelled_nodes():
  f = unit_rows(48, 6, 1)
  pool = make_pool(40, 48, 10, 1)
  f[np.asarray(pool.labelled)] += np.eye(6, dtype=np.float32)[0] * 2  # labelled rows cluster
  f /= np.linalg.norm(f, axis=1, keepdims=True)
  g, adj, losses = jax.jit(lambda k, f, p: gcn.train_gcn(
      k, f, p, hidden=16, dropout=0.3, lam=1.2, lr=1e-2, weight_decay=5e-4, num_steps=100))(
          jax.random.key(0), jnp.asarray(f), pool)
  losses = np.asarray(losses)
  assert losses[-10:].mean() < 0.7 * losses[:3].mean(), losses[[0, -1]]
  s = np.asarray(jax.nn.sigmoid(gcn.gcn_apply(gcn.gcn_net(6, 16), g, adj, jnp.asarray(f))[0]))
  assert s[np.asarray(pool.labelled)].mean() > s[np.asarray(pool.unlabelled)].mean() + 0.2


def np_k_center(h, centres, cands, budget):
  """Brute-force k-center greedy: full pairwise distances."""
  d = np.linalg.norm(h[:, None] - h[None], axis=-1)
  min_d = d[:, centres].min(axis=1)
  picks = []
  cands = cands.copy()
  for _ in range(budget):
    i = int(np.argmax(np.where(cands, min_d, -1)))
    picks.append(i)
    cands[i] = False
    min_d = np.minimum(min_d, d[:, i])
  return np.asarray(picks)


@pytest.mark.parametrize("name", ["uncertain_gcn", "core_gcn"])
def test_query_matches_brute_force_on_the_trained_gcn(name, devices):
  del devices
  fns = models.build("mlp", (5,), 3, hidden=(8,))
  strat = strategies.get(name, fns, hidden=16, num_steps=20)
  f = unit_rows(64, 5, 2)
  pool = make_pool(60, 64, 12, 2)
  key = jax.random.key(3)
  mesh = sharding.make_mesh([("data", 8)])
  ids, _ = jax.jit(lambda f, p, k: strat.select(f, p, 9, k), )(
      sharding.shard_rows(mesh, f), pool, key)
  ids = np.asarray(ids)
  # Replay: the same training, then the query by brute force in NumPy.
  g, adj, _ = gcn.train_gcn(jax.random.split(key)[0], jnp.asarray(f), pool, hidden=16,
                            dropout=0.3, lam=1.2, lr=1e-3, weight_decay=5e-4, num_steps=20)
  logit, h = np_gcn(g, np.asarray(adj, np.float64), f.astype(np.float64))
  lab, unl = np.asarray(pool.labelled), np.asarray(pool.unlabelled)
  if name == "uncertain_gcn":
    gap = np.abs(1 / (1 + np.exp(-logit)) - 0.1)
    pos = np.flatnonzero(unl)[np.argsort(gap[unl], kind="stable")[:9]]
    np.testing.assert_array_equal(np.sort(ids), np.sort(100 + pos))
  else:
    np.testing.assert_array_equal(ids, 100 + np_k_center(h, lab, unl, 9))
  assert len(set(ids)) == 9 and unl[ids - 100].all()


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=(4,))
  with pytest.raises(ValueError, match="s_margin"):
    strategies.get("uncertain_gcn", fns, s_margin=1.5)
  with pytest.raises(ValueError, match="dropout"):
    strategies.get("core_gcn", fns, dropout=1.0)


# End to end: tests/test_loop.py smoke-runs every configs/*.py (these strategies' digits,
# MNIST-10k and CIFAR-10 configs, the last two through a candidate subset) and runs every
# registered strategy on 1 vs 8 devices.
