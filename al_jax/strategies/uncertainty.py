"""Top-k uncertainty baselines on the deterministic softmax.

Reference behaviour (DAL+, TPC): least confidence 1 - max p, entropy
-sum p log p, margin p1 - p2 (smallest first). We compute from log-softmax so
p = 0 gives 0 * log 0 = 0, not the NaN the references produce.
"""

import jax
import jax.numpy as jnp

from al_jax import mc
from al_jax.strategies.base import Strategy, top_k


def least_confidence_from_logp(logp: jax.Array) -> jax.Array:
  return 1.0 - jnp.exp(jnp.max(logp, axis=-1))


def neg_margin_from_logp(logp: jax.Array) -> jax.Array:
  """-(p1 - p2): higher = smaller margin between the two most likely classes."""
  top2 = jax.lax.top_k(jnp.exp(logp), 2)[0]
  return -(top2[..., 0] - top2[..., 1])


def _top_k_strategy(fns, score_of_logp) -> Strategy:
  def score(params, rest, batch, key, ext=None):
    del key, ext
    return score_of_logp(jax.nn.log_softmax(fns.apply(params, rest, batch["x"])[0]))

  return Strategy(score, top_k())


def least_confidence(fns) -> Strategy:
  return _top_k_strategy(fns, least_confidence_from_logp)


def entropy(fns) -> Strategy:
  return _top_k_strategy(fns, mc.entropy)  # the one entropy (safe at p = 0)


def margin(fns) -> Strategy:
  return _top_k_strategy(fns, neg_margin_from_logp)
