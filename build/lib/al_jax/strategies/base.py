"""The strategy contract: a pair of pure functions (optax style).

score(params, rest, batch, key) -> per-example pytree with leading axis B:
    a scalar score (higher = query first) or features for `select`.
    `batch` is {"x": [B, ...]}. The same `key` is passed for every batch, so
    per-network randomness (MC dropout masks) is shared by all pool points.
select(features, pool, budget, key) -> (ids[budget], scores[budget]):
    `features` is the score output for the whole fixed-size padded pool,
    `pool` a PoolView; `budget` is a static int. Returns global ids (unique,
    never labelled, never padding) and the score each was picked with.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

ScoreFn = Callable[..., Any]
SelectFn = Callable[..., tuple[jax.Array, jax.Array]]


class Strategy(NamedTuple):
  score: ScoreFn
  select: SelectFn
  # False for selections that run host code (scipy MIP, agglomerative
  # clustering); those jit their own array work.
  jit_select: bool = True
  # A train.TrainExtension for strategies that shape training (LL4AL's loss
  # module, WAAL's critic, forgetting counts). When set, the loop calls
  # score(..., ext=state) and select(..., ext=state) with the state that
  # training left behind.
  extension: Any = None


class PoolView(NamedTuple):
  """What selection may see of the padded pool (all arrays [N_pad]).

  ids: global ids (-1 on padding). valid: real rows. labelled: in L.
  labels: revealed labels of labelled rows, -1 elsewhere (never the oracle's
  labels of unlabelled rows).
  """
  ids: jax.Array
  valid: jax.Array
  labelled: jax.Array
  labels: jax.Array

  @property
  def unlabelled(self) -> jax.Array:
    return self.valid & ~self.labelled


def no_features(params, rest, batch, key):
  """Score function for strategies that need nothing from the model."""
  del params, rest, key
  return jnp.zeros((batch["x"].shape[0],), jnp.float32)
