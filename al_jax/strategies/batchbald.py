"""BatchBALD (Kirsch, van Amersfoort & Gal 2019): greedy joint mutual information.

The batch A_n = {x_1..x_n} is grown greedily by

  x_n = argmax_x  I(y_1..y_{n-1}, y_x; w)
      = argmax_x  H(y_1..y_{n-1}, y_x) - E_w H(y_x | w)    (+ terms fixed by A_{n-1})

with the K consistent MC-dropout networks standing for p(w): the labels are
independent given network k, so p(y_1..y_n) = (1/K) sum_k prod_i p_k(y_i).

Joint entropies without underflow. We keep M "configurations" m of the labels
already chosen, each with its probability w_m = p(ŷ_m) and the posterior over
the K networks given it, P̂[k, m] = p_k(ŷ_m) / w_m (mean 1 over k, so it never
underflows however long the batch). Then for a candidate x with
q_m(y) = (1/K) sum_k P̂[k, m] p_k(x, y) = p(y_x = y | ŷ_m):

  H(y_1..y_{n-1}, y_x) = sum_m a_m [H(q_m) - log w_m],

  exact:   the configurations are all C^(n-1) label tuples, a_m = w_m;
  sampled: once C^(n-1) > M (`num_configs`), M tuples spread evenly over the
           K networks (stratified, as batchbald_redux): column m belongs to
           network k(m) = m mod K, and its labels are drawn from p_k(m) alone
           (given the network the labels are independent, so each new point
           extends the column by one draw from p_k(m)(y_x)). The stratum of
           network k carries total weight 1/K, so a_m = 1 / (K n_k(m)).
           Stratifying removes the between-network part of the sampling
           variance that plain draws from the mixture have.

The sampled track keeps log p_k(ŷ_m) for every k (not P̂ itself), so P̂ and
w_m come from one logsumexp per column. The - log w_m term does not depend
on x, so the greedy step needs only sum_m a_m H(q_m): one [M, K] x [K, N C]
product per step, chunked over the pool so memory stays O(chunk * M * C),
never O(N C^n). Products and sums run at full float32 precision
(Precision.HIGHEST: GPUs and TPUs would otherwise round the [M, K] x
[K, N C] product through TF32 / bfloat16 passes, which moves near-tied
candidates).

Speed / quality knob: `num_configs` (M). Cost per pick is O(M K N C); the
first floor(log_C M) + 1 picks are exact, later ones sampled with error
O(1 / sqrt(M)). docs/bayesian_strategies.md has the measured agreement with a
large-M reference and the true joint MI of the batches.

Returned scores are the batch's joint mutual information after each pick, as
batchbald_redux reports them (exact while exact, an estimate once sampled).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from al_jax import mc, sharding
from al_jax.strategies.base import Strategy

_HI = jax.lax.Precision.HIGHEST


class JointState(NamedTuple):
  """Configurations of the labels of the points chosen so far."""
  post: jax.Array     # [K, M] exact track: P̂ = p_k(ŷ_m) / w_m (ones on unused columns)
  log_w: jax.Array    # [M] exact track: log p(ŷ_m) (-inf on unused columns)
  weight: jax.Array   # [M] exact track: w_m (0 on unused columns)
  exact: jax.Array    # bool: score with the exact track
  count: jax.Array    # int: used exact columns
  log_pk: jax.Array   # [K, M] sampled track: log p_k(ŷ_m), column m drawn from network m % K


def init_state(num_samples: int, num_configs: int) -> JointState:
  """The empty batch: one configuration (the empty tuple) with probability 1."""
  if num_configs < num_samples:
    raise ValueError(f"num_configs ({num_configs}) must be >= num_samples ({num_samples}): "
                     "sampled configurations are spread evenly over the K networks")
  first = jnp.arange(num_configs) == 0
  return JointState(post=jnp.ones((num_samples, num_configs), jnp.float32),
                    log_w=jnp.where(first, 0.0, -jnp.inf),
                    weight=first.astype(jnp.float32),
                    exact=jnp.array(True), count=jnp.array(1, jnp.int32),
                    log_pk=jnp.zeros((num_samples, num_configs), jnp.float32))


def _stratum_weights(k: int, m: int) -> jax.Array:
  """a_m = 1 / (K n_k(m)): each network's columns together weigh 1/K."""
  per = jnp.bincount(jnp.arange(m) % k, length=k)
  return 1.0 / (k * per[jnp.arange(m) % k].astype(jnp.float32))


def _sampled_view(state: JointState):
  """(P̂ [K, M], log w [M], a [M]) of the sampled track."""
  k, m = state.log_pk.shape
  lse = jax.nn.logsumexp(state.log_pk, axis=0)
  post = k * jnp.exp(state.log_pk - lse)
  return post, lse - jnp.log(k), _stratum_weights(k, m)


def scoring_view(state: JointState):
  """(P̂, log w, a) of the track that scores the next pick."""
  post, log_w, a = _sampled_view(state)
  return (jnp.where(state.exact, state.post, post), jnp.where(state.exact, state.log_w, log_w),
          jnp.where(state.exact, state.weight, a))


def joint_entropy_of_chosen(state: JointState) -> jax.Array:
  """H(y_1..y_{n-1}) estimated from the configurations (exact while exact)."""
  _, log_w, a = scoring_view(state)
  return jnp.sum(jnp.where(a > 0, -a * log_w, 0.0))


def conditional_entropy_terms(state: JointState, probs: jax.Array,
                              chunk_size: int) -> jax.Array:
  """sum_m a_m H(q_m) for every candidate: probs [N, K, C] -> [N].

  Adding `joint_entropy_of_chosen` gives H(y_1..y_{n-1}, y_x).
  """
  post, _, a = scoring_view(state)
  k = probs.shape[1]

  def one(pc):
    # [chunk, C, M]: M last is the layout XLA's CPU dot and log run fastest on.
    q = jnp.einsum("km,nkc->ncm", post, pc, precision=_HI) / k
    h = -jnp.sum(xlogy(q, q), axis=1)                   # [chunk, M]
    return jnp.dot(h, a, precision=_HI)

  return sharding.chunked_map(one, probs, chunk_size)


def extend(state: JointState, probs_x: jax.Array, key) -> JointState:
  """Adds the chosen point with MC probabilities probs_x [K, C] to the state."""
  k, m_cols = state.post.shape
  c = probs_x.shape[-1]
  tiny = jnp.finfo(jnp.float32).tiny
  stay_exact = state.exact & (state.count * c <= m_cols)

  # Exact track: column j enumerates (m, y) = (j // C, j % C).
  q = jnp.dot(state.post.T, probs_x, precision=_HI) / k   # [M, C]: p(y | ŷ_m)
  j = jnp.arange(m_cols)
  m_e, y_e = j // c, j % c
  lw_e = jnp.where(m_e < state.count, state.log_w[m_e], -jnp.inf)
  qmy = q[m_e, y_e]
  ok = (qmy > tiny) & jnp.isfinite(lw_e)
  post_e = jnp.where(ok, state.post[:, m_e] * probs_x[:, y_e] / jnp.where(ok, qmy, 1.0), 1.0)
  log_w_e = jnp.where(ok, lw_e + jnp.log(jnp.where(ok, qmy, 1.0)), -jnp.inf)

  # Sampled track: column m draws its label from its own network m % K.
  log_px = jnp.log(probs_x)                                # [K, C]
  y_s = jax.random.categorical(key, log_px[j % k], axis=-1)  # [M]
  log_pk = state.log_pk + log_px[:, y_s]

  keep = lambda new, old: jnp.where(stay_exact, new, old)
  return JointState(post=keep(post_e, state.post), log_w=keep(log_w_e, state.log_w),
                    weight=keep(jnp.exp(log_w_e), state.weight), exact=stay_exact,
                    count=keep(state.count * c, state.count).astype(jnp.int32), log_pk=log_pk)


def batchbald_select(logp: jax.Array, pool, budget: int, key, *, num_configs: int = 1000,
                     chunk_size: int = 1024):
  """Greedy BatchBALD over the padded pool.

  Args:
    logp: [N, K, C] MC log-probabilities of the padded pool.
    pool: PoolView.
    budget: static batch size b.
    key: PRNG key (draws the sampled configurations).
    num_configs: M (>= K); exact joint entropies while C^(n-1) <= M, else M
      samples spread evenly over the K networks.
    chunk_size: pool rows per block of the [rows, M, C] intermediate.

  Returns:
    (ids[b], joint MI of the batch after each pick [b]).
  """
  _, k, _ = logp.shape
  probs = jnp.exp(logp.astype(jnp.float32))
  cond_h = mc.expected_entropy(logp.astype(jnp.float32))  # E_k H(y_x | w) [N]
  low = jnp.finfo(jnp.float32).min

  def step(i, carry):
    state, free, pos, scores, cond_sum = carry
    h_x = conditional_entropy_terms(state, probs, chunk_size)
    gain = h_x - cond_h
    # NaN ranks last among the free rows, never ahead of them (cf. selection).
    gain = jnp.where(jnp.isnan(gain) | (gain == -jnp.inf), low, gain)
    gain = jnp.where(free, gain, -jnp.inf)
    best = jnp.argmax(gain)
    mi = joint_entropy_of_chosen(state) + h_x[best] - cond_sum - cond_h[best]
    state = extend(state, probs[best], jax.random.fold_in(key, i))
    return (state, free.at[best].set(False), pos.at[i].set(best),
            scores.at[i].set(mi), cond_sum + cond_h[best])

  carry = (init_state(k, num_configs), pool.unlabelled, jnp.zeros(budget, jnp.int32),
           jnp.zeros(budget, jnp.float32), jnp.zeros((), jnp.float32))
  _, _, pos, scores, _ = jax.lax.fori_loop(0, budget, step, carry)
  return pool.ids[pos], scores


def batchbald(fns, *, num_samples: int = 20, num_configs: int = 1000, chunk_size: int = 1024,
              samples_per_pass: int | None = None, mask: str = "shared") -> Strategy:
  """BatchBALD; the score passes the [B, K, C] MC log-probabilities to select.

  `mask="shared"` (the default) keeps one dropout mask per sample for the
  whole pool: the joint entropies need the same K networks for every point.
  "per_example" is there for experiments only.
  """
  if num_configs < 1:
    raise ValueError(f"num_configs must be >= 1, got {num_configs}")
  mc.check_mask(mask)

  def score(params, rest, batch, key, ext=None):
    del ext
    return mc.log_probs(fns, params, rest, batch["x"], key, num_samples, samples_per_pass,
                        mc.batch_ids(batch, mask))

  def select(logp, pool, budget, key, ext=None):
    del ext
    return batchbald_select(logp, pool, budget, key, num_configs=num_configs,
                            chunk_size=chunk_size)

  return Strategy(score, select)
