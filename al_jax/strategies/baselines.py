"""Random sampling: uniform without replacement among unlabelled rows.

Unlike the with-replacement `randint` "permutation" of GCN/TA-VAAL (which can
return duplicates): the top-k of i.i.d. uniform keys is a uniformly random
subset, and jax.random gives the same keys under any sharding of the pool.
"""

import jax

from al_jax.kernels import topk
from al_jax.strategies.base import Strategy, no_features


def random(fns) -> Strategy:
  del fns

  def select(features, pool, budget, key, ext=None):
    del features, ext
    u = jax.random.uniform(key, pool.ids.shape)
    return topk.masked_top_k(u, pool, budget)

  return Strategy(no_features, select)
