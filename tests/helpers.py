"""Small fixtures shared by the strategy tests."""

import jax.numpy as jnp
import numpy as np

from al_jax.strategies.base import PoolView


def make_pool(n, n_pad, n_lab, seed, id_offset=0):
  """A padded PoolView: n real rows of n_pad, n_lab of them labelled at random.

  id_offset != 0 makes global ids differ from positions, so a test catches a
  strategy that returns positions.
  """
  rng = np.random.default_rng(seed)
  valid = np.arange(n_pad) < n
  labelled = np.zeros(n_pad, bool)
  labelled[rng.choice(n, n_lab, replace=False)] = True
  ids = np.where(valid, id_offset + np.arange(n_pad), -1).astype(np.int32)
  return PoolView(*(jnp.asarray(a) for a in (ids, valid, labelled,
                                               np.full(n_pad, -1, np.int32))))


def set_fields(c, over: dict):
  """Sets dotted config fields in place: {"al.num_rounds": 3} -> c.al.num_rounds = 3."""
  for k, v in over.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c
