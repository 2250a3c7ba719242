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


def run_killed_at_check(monkeypatch, run, nth: int) -> None:
  """Calls run() with loop._check_selection raising KeyboardInterrupt at its
  nth call (as if the process were killed there), then restores it."""
  import pytest  # pylint: disable=import-outside-toplevel
  from al_jax import loop  # pylint: disable=import-outside-toplevel
  real = loop._check_selection  # pylint: disable=protected-access
  calls = []

  def dies(*args):
    calls.append(1)
    if len(calls) == nth:
      raise KeyboardInterrupt
    return real(*args)

  monkeypatch.setattr(loop, "_check_selection", dies)
  with pytest.raises(KeyboardInterrupt):
    run()
  monkeypatch.setattr(loop, "_check_selection", real)
