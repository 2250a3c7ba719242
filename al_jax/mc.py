"""MC dropout: [N, K, C] log-probabilities and their reductions.

Two mask schemes (`MASKS`), both independent of batching, sharding and host
count because every key is a function of (key, sample, global id) only:

  "per_example"  example i in sample k uses dropout key
                 fold_in(fold_in(key, k), id_i): an independent mask per
                 example and sample, as MC dropout in Gal et al. 2017 and
                 DeepAL+'s BALDDropout. The default of the per-example
                 strategies (BALD, Bayesian LC / entropy, variation ratios,
                 mean-std, Power*): with one mask shared by every example,
                 the K networks' score noise is correlated across the pool and
                 top-k picks redundant batches (measured on MNIST-10k: shared
                 masks left BALD level with random, per-example masks beat it
                 by +0.02 AUBC; docs/bayesian_strategies.md).
  "shared"       every example in sample k uses fold_in(key, k): sample k is
                 one fixed network for the whole pool (consistent MC dropout).
                 BatchBALD needs this: its joint entropies are over the same K
                 networks for every point (Kirsch et al. 2019).

The loop passes the same key to every pool batch and the batch's global ids
in `batch["ids"]`.

All reductions take log-probabilities `logp` [..., K, C] and work in log space
where it matters, so p = 0 gives 0 * log 0 = 0 instead of the reference
code's NaN (DAL+ sorts NaNs last and silently never picks those points).
"""

import jax
import jax.numpy as jnp

from al_jax import sharding

MASKS = ("per_example", "shared")


def check_mask(mask: str) -> None:
  if mask not in MASKS:
    raise ValueError(f"mask must be one of {list(MASKS)}, got {mask!r}")


def batch_ids(batch, mask: str):
  """The batch's global ids, required for per-example masks."""
  if mask == "shared":
    return None
  if "ids" not in batch:
    raise ValueError('mask="per_example" needs the global ids of the batch rows in '
                     'batch["ids"] (the loop passes them); pass them, or use mask="shared"')
  return batch["ids"]


def _logits(out):
  # Models may return logits or (logits, extras).
  return out[0] if isinstance(out, (tuple, list)) else out


def log_probs(fns, params, rest, x, key, num_samples: int,
              samples_per_pass: int | None = None, ids=None) -> jax.Array:
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
    ids: [B] global ids for per-example masks (example i of sample k uses
      `fold_in(fold_in(key, k), ids[i])`); None shares one mask per sample.

  Returns:
    [B, K, C] float32 log-softmax outputs.
  """
  keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_samples))

  def one(k):
    if ids is None:
      logits = _logits(fns.apply_mc(params, rest, x, k))
    else:
      row_keys = jax.vmap(lambda i: jax.random.fold_in(k, i))(ids)
      logits = jax.vmap(
          lambda xi, ki: _logits(fns.apply_mc(params, rest, xi[None], ki))[0])(x, row_keys)
    return jax.nn.log_softmax(logits.astype(jnp.float32))

  out = jax.lax.map(one, keys, batch_size=samples_per_pass)  # [K, B, C]
  return jnp.swapaxes(out, 0, 1)


def pool_log_probs(fns, params, rest, x, key, num_samples: int, batch_size: int,
                   mesh=None, samples_per_pass: int | None = None, ids=None) -> jax.Array:
  """`log_probs` over a whole array in fixed-size batches (bounded memory).

  Rows of `x` must be a multiple of `batch_size`; with a mesh each batch is
  sharded over the `data` axis. `ids` [N] selects per-example masks as in
  `log_probs`. Returns [N, K, C].
  """
  if ids is None:
    return sharding.chunked_map(
        lambda xb: log_probs(fns, params, rest, xb, key, num_samples, samples_per_pass),
        x, batch_size, mesh)
  return sharding.chunked_map(
      lambda b: log_probs(fns, params, rest, b["x"], key, num_samples, samples_per_pass,
                          b["ids"]),
      {"x": x, "ids": ids}, batch_size, mesh)


def mean_log_probs(logp: jax.Array) -> jax.Array:
  """log of the MC-mean prediction, log (1/K) sum_k p_k: [..., K, C] -> [..., C]."""
  return jax.nn.logsumexp(logp, axis=-2) - jnp.log(logp.shape[-2])


def entropy(logp: jax.Array) -> jax.Array:
  """-sum_c p log p over the last axis (nats), 0 at p = 0.

  The project's one entropy: MC reductions here, the deterministic entropy
  strategy and forgetting's tie-break all use it.
  """
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def predictive_entropy(logp: jax.Array) -> jax.Array:
  """H[E_k p_k]: entropy of the MC-mean prediction. [..., K, C] -> [...]."""
  return entropy(mean_log_probs(logp))


def expected_entropy(logp: jax.Array) -> jax.Array:
  """E_k H[p_k]: mean entropy of the individual networks. [..., K, C] -> [...]."""
  return jnp.mean(entropy(logp), axis=-1)


def _centred(logp: jax.Array):
  """log p̄ and d = log p_k - log p̄ without cancellation. [..., K, C] -> ([..., C], [..., K, C]).

  With r_c = max_k log p_kc, δ_kc = log p_kc - r_c is exact for close values
  (Sterbenz) and <= 0, and log p̄_c - r_c = log1p(mean_k expm1(δ_kc)) keeps
  full relative precision when the K networks nearly agree, where
  logsumexp(log p) - log K would lose it to the O(1) size of log p.
  """
  r = jnp.max(logp, axis=-2, keepdims=True)
  r = jnp.where(jnp.isfinite(r), r, 0.0)       # Class impossible under every network.
  delta = logp - r
  m = jnp.log1p(jnp.mean(jnp.expm1(delta), axis=-2, keepdims=True))
  d = jnp.where(jnp.isfinite(m), delta - m, 0.0)
  return jnp.squeeze(r + m, -2), d


def _kl_terms(d: jax.Array) -> jax.Array:
  """f(d) = r log r - r + 1 at r = e^d: >= 0 for every d, = d^2/2 + O(d^3).

  sum_c p̄_c f(log p_c - log p̄_c) = KL(p || p̄) when both sum to 1, and each
  term is non-negative, so small divergences never come out as a difference
  of O(1) numbers.
  """
  e = jnp.exp(d)
  u = -d
  # e^d (expm1(u) - u) near 0 as a series (relative error < 1e-8 at |u| < 1/4).
  series = 0.5 * u * u * (1 + u / 3 * (1 + u / 4 * (1 + u / 5 * (1 + u / 6 * (1 + u / 7)))))
  direct = 1.0 + jnp.where(e > 0, (d - 1.0) * e, 0.0)
  return jnp.where(jnp.abs(d) < 0.25, e * series, direct)


def mutual_information(logp: jax.Array) -> jax.Array:
  """BALD: I(y; w) = H[E_k p_k] - E_k H[p_k] (Houlsby et al. 2011; Gal et al. 2017).

  Computed as the equal quantity E_k KL(p_k || p̄) with p̄ = E_k p_k, written
  as E_k sum_c p̄_c f(log p_kc - log p̄_c) with every term >= 0 (`_kl_terms`).
  The difference of the two float32 entropies loses the small MI of nearly
  agreeing networks to cancellation (MC logit noise 1e-3: 11 of the top 50
  picks equal to float64's); this form keeps it (tests/test_mc.py).
  """
  log_mean, d = _centred(logp)
  p_mean = jnp.exp(log_mean)[..., None, :]
  terms = jnp.where(p_mean > 0, p_mean * _kl_terms(d), 0.0)
  return jnp.mean(jnp.sum(terms, axis=-1), axis=-1)


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
  Two-pass: the deviations p_kc - p̄_c = p̄_c expm1(d_kc) come from the
  cancellation-free `_centred`, not from E[p^2] - E[p]^2.
  """
  log_mean, d = _centred(logp)
  dev = jnp.expm1(d)
  std = jnp.exp(log_mean) * jnp.sqrt(jnp.mean(dev * dev, axis=-2))
  return jnp.mean(std, axis=-1)
