"""Bayesian (MC-dropout) top-k strategies and their stochastic Power variants.

Each score runs K consistent MC-dropout networks (`al_jax.mc`) and reduces
the [B, K, C] log-probabilities to one number per example, higher = query
first:

  bayesian_lc       1 - max_c of the MC-mean prediction
  bayesian_entropy  H[E_k p_k] ("Max Entropy" in Gal et al. 2017)
  bald              H[E_k p_k] - E_k H[p_k] (mutual information)
  variation_ratios  1 - modal argmax count / K
  mean_std          mean_c std_k p_k(c)
  power_bald        BALD, selected by sampling p(i) ∝ BALD_i^beta without
                    replacement (Gumbel-top-k on beta * log BALD_i;
                    Kirsch et al. 2023, "Stochastic batch acquisition")
  power_entropy     the same on H[E_k p_k]

`mask` ("per_example", the default, or "shared") picks the dropout masks
(`al_jax.mc`): an independent mask per example and sample, from
fold_in(fold_in(key, k), global id), so the same under any batching, sharding
or host count; or one mask per sample shared by the whole pool.

Where we differ from the reference code (docs/bayesian_strategies.md):
  * masks are a function of (key, sample, global id), not redrawn per
    minibatch from a global RNG, and BatchNorm stays frozen
    (DAL+ calls `clf.train()`, which updates BN statistics during the query);
  * entropies use natural logs with 0 log 0 = 0 (TPC adds 1e-6 inside log2);
    the ranking is the same;
  * variation ratios use the MC argmax votes (Gal et al.), not DAL+'s
    `var_ratio.py`, which is 1 - max p of the deterministic net.
"""

import jax.numpy as jnp

from al_jax import mc
from al_jax.kernels import topk
from al_jax.strategies.base import Strategy, top_k

# Strategies that score with MC dropout: they need a model whose dropout is on
# (strategies.check_mc_dropout).
MC_STRATEGIES = ("bayesian_lc", "bayesian_entropy", "bald", "variation_ratios", "mean_std",
                 "power_bald", "power_entropy", "batchbald")

# Power scores are logs of non-negative quantities; BALD can round to <= 0.
_POWER_FLOOR = 1e-12


def _mc_top_k(fns, reduce, num_samples: int, samples_per_pass: int | None,
              mask: str) -> Strategy:
  mc.check_mask(mask)

  def score(params, rest, batch, key, ext=None):
    del ext
    return reduce(mc.log_probs(fns, params, rest, batch["x"], key, num_samples,
                               samples_per_pass, mc.batch_ids(batch, mask)))

  return Strategy(score, top_k())


def _mc_power(fns, reduce, num_samples: int, samples_per_pass: int | None,
              beta: float, mask: str) -> Strategy:
  if not beta > 0:
    raise ValueError(f"beta must be > 0, got {beta}")
  mc.check_mask(mask)

  def score(params, rest, batch, key, ext=None):
    del ext
    s = reduce(mc.log_probs(fns, params, rest, batch["x"], key, num_samples,
                            samples_per_pass, mc.batch_ids(batch, mask)))
    return jnp.log(jnp.maximum(s, _POWER_FLOOR))

  def select(log_scores, pool, budget, key, ext=None):
    del ext
    # temperature = 1 / beta: beta -> inf is the deterministic top-k,
    # beta -> 0 uniform random sampling.
    ids, picked = topk.stochastic_top_k(log_scores, pool, budget, key,
                                             temperature=1.0 / beta)
    return ids, jnp.exp(picked)

  return Strategy(score, select)


def bayesian_lc(fns, *, num_samples: int = 20, samples_per_pass: int | None = None,
                mask: str = "per_example") -> Strategy:
  """Least confidence of the MC-mean prediction."""
  return _mc_top_k(fns, mc.least_confidence, num_samples, samples_per_pass, mask)


def bayesian_entropy(fns, *, num_samples: int = 20,
                     samples_per_pass: int | None = None,
                     mask: str = "per_example") -> Strategy:
  """Max entropy of the MC-mean prediction (Gal et al. 2017)."""
  return _mc_top_k(fns, mc.predictive_entropy, num_samples, samples_per_pass, mask)


def bald(fns, *, num_samples: int = 20, samples_per_pass: int | None = None,
         mask: str = "per_example") -> Strategy:
  """Top-k mutual information between label and weights (Gal et al. 2017)."""
  return _mc_top_k(fns, mc.mutual_information, num_samples, samples_per_pass, mask)


def variation_ratios(fns, *, num_samples: int = 20,
                     samples_per_pass: int | None = None,
                     mask: str = "per_example") -> Strategy:
  """Top-k disagreement of the K networks' argmax labels (Gal et al. 2017)."""
  return _mc_top_k(fns, mc.variation_ratios, num_samples, samples_per_pass, mask)


def mean_std(fns, *, num_samples: int = 20, samples_per_pass: int | None = None,
             mask: str = "per_example") -> Strategy:
  """Top-k mean per-class std of the MC probabilities (Kampffmeyer et al. 2016)."""
  return _mc_top_k(fns, mc.mean_std, num_samples, samples_per_pass, mask)


def power_bald(fns, *, num_samples: int = 20, beta: float = 1.0,
               samples_per_pass: int | None = None,
               mask: str = "per_example") -> Strategy:
  """PowerBALD: sample the batch with p ∝ BALD^beta (Kirsch et al. 2023)."""
  return _mc_power(fns, mc.mutual_information, num_samples, samples_per_pass, beta, mask)


def power_entropy(fns, *, num_samples: int = 20, beta: float = 1.0,
                  samples_per_pass: int | None = None,
                  mask: str = "per_example") -> Strategy:
  """PowerEntropy: sample with p ∝ H[E_k p_k]^beta (Kirsch et al. 2023)."""
  return _mc_power(fns, mc.predictive_entropy, num_samples, samples_per_pass, beta, mask)
