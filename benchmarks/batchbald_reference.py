"""A float64 NumPy BatchBALD to judge al_jax's against (benchmarks and tests only).

Greedy joint mutual information as in al_jax/strategies/batchbald.py, but
computed so that its own error is far below the gaps it decides:

  * every configuration set is rebuilt from scratch at each pick, float64;
  * exact enumeration of the C^(n-1) label tuples while there are at most
    `exact_max` of them, else `num_final` tuples spread evenly over the K
    networks (stratified sampling, weight 1 / M each);
  * two stages per pick: all candidates are screened with `num_screen`
    configurations (exact while C^(n-1) <= num_screen), the `shortlist` best
    are rescored with the large set, and the winner is taken from those.
    Both stages use one configuration set for every candidate (common random
    numbers), so candidate differences carry little sampling noise.

For each pick it also reports the winner's lead over the runner-up and, when
sampled, the standard error of that lead (from the per-configuration
differences): a lead under ~3 standard errors is a near-tie that no sampled
estimator, this one included, decides reliably.
"""

import numpy as np


def _entropy(q: np.ndarray) -> np.ndarray:
  """Entropy over the last axis, 0 log 0 = 0."""
  return -np.sum(q * np.log(np.where(q > 0, q, 1.0)), axis=-1)


def _configurations(logp, chosen, num, exact_max, rng):
  """(log p_k(ŷ_m) [M, K], weight a_m [M], exact) for the labels of `chosen`."""
  k, c = logp.shape[1], logp.shape[2]
  if c ** len(chosen) <= max(exact_max, 1):
    log_pk = np.zeros((1, k))
    for i in chosen:  # column m * C + y extends tuple m by label y
      log_pk = (log_pk[:, None, :] + logp[i].T[None]).reshape(-1, k)
    w = np.exp(np.logaddexp.reduce(log_pk, axis=1) - np.log(k))
    return log_pk, w, True
  if num % k:
    raise ValueError(f"num ({num}) must be a multiple of K ({k})")
  net = np.arange(num) % k  # stratified: column m is drawn from network m % K
  log_pk = np.zeros((num, k))
  for i in chosen:
    cdf = np.cumsum(np.exp(logp[i][net]), axis=-1)
    y = np.minimum((rng.random((num, 1)) > cdf).sum(-1), logp.shape[2] - 1)
    log_pk += logp[i][:, y].T
  return log_pk, np.full(num, 1.0 / num), False


def _cond_entropy_terms(log_pk, probs, chunk):
  """Per configuration m and candidate x: H(y_x | ŷ_m). probs [K, X, C] -> [M, X]."""
  k, x, c = probs.shape
  post = np.exp(log_pk - log_pk.max(1, keepdims=True))
  post /= post.sum(1, keepdims=True)                      # p(k | ŷ_m)
  flat = probs.reshape(k, x * c)
  out = np.empty((len(post), x))
  for s in range(0, len(post), chunk):
    out[s:s + chunk] = _entropy((post[s:s + chunk] @ flat).reshape(-1, x, c))
  return out


def reference_select(logp, budget, *, seed=0, num_screen=10_000, num_final=1_000_000,
                     exact_max=1_000_000, shortlist=64, cells=20_000_000):
  """Greedy BatchBALD; returns (positions [b], info per pick).

  logp: [N, K, C] log-probabilities (any float dtype; used in float64).
  info: dicts with `lead` (winner minus runner-up, nats), `se` (its standard
  error; 0 when exact), `screen_rank` (the winner's rank in the screen) and
  `exact`.
  """
  logp = np.asarray(logp, np.float64)
  n, k, c = logp.shape
  probs_kxc = np.exp(logp).transpose(1, 0, 2)             # [K, N, C]
  cond = _entropy(np.exp(logp)).mean(1)                   # E_k H(y_x | w_k)
  rng = np.random.default_rng(seed)
  chosen, info = [], []
  for _ in range(budget):
    free = np.setdiff1d(np.arange(n), chosen)
    log_pk, a, _ = _configurations(logp, chosen, num_screen, num_screen, rng)
    chunk = max(cells // (len(free) * c), 1)
    gain = a @ _cond_entropy_terms(log_pk, probs_kxc[:, free], chunk) - cond[free]
    order = np.argsort(-gain)
    short = free[order[:shortlist]]
    log_pk, a, exact = _configurations(logp, chosen, num_final, exact_max, rng)
    terms = _cond_entropy_terms(log_pk, probs_kxc[:, short], max(cells // (len(short) * c), 1))
    final = a @ terms - cond[short]
    top = np.argsort(-final)[:2]
    lead = final[top[0]] - final[top[1]] if len(top) > 1 else np.inf
    se = 0.0 if exact else float(np.std(terms[:, top[0]] - terms[:, top[1]]) / np.sqrt(len(a)))
    chosen.append(int(short[top[0]]))
    info.append({"lead": float(lead), "se": se, "screen_rank": int(top[0]), "exact": exact})
  return np.array(chosen), info
