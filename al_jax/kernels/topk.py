"""Selection primitives over the fixed-size padded pool.

All functions take per-row arrays of the whole padded pool (possibly sharded
over the `data` axis) and a PoolView, and return global ids. The loop checks
beforehand that the pool holds at least `budget` unlabelled rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # Type hints only: importing strategies here would be circular.
  from al_jax.strategies.base import PoolView


def top_positions(scores: jax.Array, pool: PoolView, budget: int) -> jax.Array:
  """Positions of the `budget` highest scores among unlabelled rows.

  NaN and -inf scores of unlabelled rows become the lowest finite float, so
  they are picked last but always ahead of labelled or padding rows (which
  are -inf): a NaN is neither picked first nor silently dropped, unlike
  torch.sort in the reference code. Ties go to the lower position.
  """
  s = scores.astype(jnp.float32)
  low = jnp.finfo(jnp.float32).min
  s = jnp.where(jnp.isnan(s) | (s == -jnp.inf), low, s)
  s = jnp.where(pool.unlabelled, s, -jnp.inf)
  return jax.lax.top_k(s, budget)[1]


def masked_top_k(scores: jax.Array, pool: PoolView, budget: int):
  """(ids[budget], scores[budget]) of the highest-scoring unlabelled rows."""
  pos = top_positions(scores, pool, budget)
  return pool.ids[pos], scores[pos].astype(jnp.float32)


def stochastic_top_k(scores: jax.Array, pool: PoolView, budget: int, key,
                     temperature: float = 1.0):
  """Gumbel-top-k: samples without replacement with p ∝ exp(score / T).

  PowerBALD / PowerEntropy pass log scores (Kirsch et al. 2023). Returns the
  original (unperturbed) scores of the picks.
  """
  gumbel = jax.random.gumbel(key, scores.shape, jnp.float32)
  pos = top_positions(scores.astype(jnp.float32) / temperature + gumbel, pool, budget)
  return pool.ids[pos], scores[pos].astype(jnp.float32)
