"""Consistent MC dropout: [N, K, C] log-probabilities and their reductions.

Sample k runs `fns.apply_mc` with key `fold_in(key, k)`. `apply_mc` draws one
dropout mask per key, shared by every example, so sample k is one fixed
network whatever the batch, shard or host the example lands in: the K
networks that score one pool point score all of them (Kirsch et al. 2019 need
this for BatchBALD's joint entropies; plain BALD gets lower-variance
rankings). The loop passes the same key to every pool batch.

All reductions take log-probabilities `logp` [..., K, C] and work in log space
where it matters, so p = 0 gives 0 * log 0 = 0 instead of the reference
code's NaN (DAL+ sorts NaNs last and silently never picks those points).
"""

import jax
import jax.numpy as jnp

from al_jax import sharding


def log_probs(fns, params, rest, x, key, num_samples: int,
              samples_per_pass: int | None = None) -> jax.Array:
  """MC-dropout log-probabilities of one batch.

  Args:
    fns: the model's `models.Functional`.
    params, rest: model state.
    x: [B, ...] inputs.
    key: one PRNG key for the whole pool; sample k uses `fold_in(key, k)`.
    num_samples: K, the number of dropout networks.
    samples_per_pass: how many of the K networks run side by side (vmapped);
      None runs them one after the other (`lax.map`), so peak activation
      memory is that of one forward pass over the batch.

  Returns:
    [B, K, C] float32 log-softmax outputs.
  """
  keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_samples))

  def one(k):
    return jax.nn.log_softmax(fns.apply_mc(params, rest, x, k).astype(jnp.float32))

  out = jax.lax.map(one, keys, batch_size=samples_per_pass)  # [K, B, C]
  return jnp.swapaxes(out, 0, 1)


def pool_log_probs(fns, params, rest, x, key, num_samples: int, batch_size: int,
                   mesh=None, samples_per_pass: int | None = None) -> jax.Array:
  """`log_probs` over a whole array in fixed-size batches (bounded memory).

  Rows of `x` must be a multiple of `batch_size`; with a mesh each batch is
  sharded over the `data` axis. Returns [N, K, C].
  """
  return sharding.map_batches(
      lambda xb: log_probs(fns, params, rest, xb, key, num_samples, samples_per_pass),
      x, batch_size, mesh)


def mean_log_probs(logp: jax.Array) -> jax.Array:
  """log of the MC-mean prediction, log (1/K) sum_k p_k: [..., K, C] -> [..., C]."""
  return jax.nn.logsumexp(logp, axis=-2) - jnp.log(logp.shape[-2])


def entropy(logp: jax.Array) -> jax.Array:
  """-sum_c p log p over the last axis (nats)."""
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def predictive_entropy(logp: jax.Array) -> jax.Array:
  """H[E_k p_k]: entropy of the MC-mean prediction. [..., K, C] -> [...]."""
  return entropy(mean_log_probs(logp))


def expected_entropy(logp: jax.Array) -> jax.Array:
  """E_k H[p_k]: mean entropy of the individual networks. [..., K, C] -> [...]."""
  return jnp.mean(entropy(logp), axis=-1)


def mutual_information(logp: jax.Array) -> jax.Array:
  """BALD: I(y; w) = H[E_k p_k] - E_k H[p_k] (Houlsby et al. 2011; Gal et al. 2017).

  Mathematically >= 0; float rounding can make it a tiny negative number, which
  we keep (clipping would create ties among near-certain points).
  """
  return predictive_entropy(logp) - expected_entropy(logp)


def least_confidence(logp: jax.Array) -> jax.Array:
  """1 - max_c of the MC-mean prediction."""
  return 1.0 - jnp.exp(jnp.max(mean_log_probs(logp), axis=-1))


def variation_ratios(logp: jax.Array) -> jax.Array:
  """1 - (count of the modal argmax class) / K (Freeman 1965; Gal et al. 2017)."""
  num_classes = logp.shape[-1]
  votes = jax.nn.one_hot(jnp.argmax(logp, axis=-1), num_classes).sum(axis=-2)
  return 1.0 - jnp.max(votes, axis=-1) / logp.shape[-2]


def mean_std(logp: jax.Array) -> jax.Array:
  """Mean over classes of the std over samples of p_c (Kampffmeyer et al. 2016).

  Population std (divide by K), as DAL+'s `mean_std.py` (np.std, ddof=0).
  """
  p = jnp.exp(logp)
  var = jnp.mean(p * p, axis=-2) - jnp.mean(p, axis=-2) ** 2
  return jnp.mean(jnp.sqrt(jnp.maximum(var, 0.0)), axis=-1)
