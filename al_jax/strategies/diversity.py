"""Diversity strategies on penultimate embeddings.

coreset (Sener & Savarese 2018): k-center greedy with the labelled set as
initial centres. Unlike DeepAL+ (full N x N matrix, ~10 GB at N = 50k) it
keeps one O(N) min-distance vector; embeddings are computed without
train-time augmentation (DeepAL+ embeds under transform_train).
"""

from al_jax import kcenter
from al_jax.strategies.base import Strategy


def coreset(fns, *, block: int = 256) -> Strategy:
  def score(params, rest, batch, key):
    del key
    return fns.embed(params, rest, batch["x"])

  def select(emb, pool, budget, key):
    pos, dists = kcenter.k_center_greedy(emb, pool.labelled & pool.valid, pool.unlabelled,
                                         budget, key, block)
    return pool.ids[pos], dists

  return Strategy(score, select)
