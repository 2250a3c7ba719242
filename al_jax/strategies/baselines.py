"""Random sampling: uniform without replacement among unlabelled rows.

Not the with-replacement `randint` permutation of GCN/TA-VAAL (which can
return duplicates); Gumbel-free here: uniform keys + top-k is exactly a
uniformly random subset, and independent of the pool's sharding.
"""

import jax

from al_jax import selection
from al_jax.strategies.base import Strategy, no_features


def random(fns) -> Strategy:
  del fns

  def select(features, pool, budget, key):
    del features
    u = jax.random.uniform(key, pool.ids.shape)
    return selection.masked_top_k(u, pool, budget)

  return Strategy(no_features, select)
