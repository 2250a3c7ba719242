"""Array-level API: pick a batch from your own model's outputs, no Flax model needed.

  import al_jax
  ids = al_jax.select("entropy", 10, labelled=mask, logits=logits)
  ids = al_jax.select("bald", 10, labelled=mask, mc_log_probs=logp, key=0)
  ids = al_jax.select("badge", 10, labelled=mask, embeddings=h, probs=p)

Each call builds the feature pytree the strategy's `score` would produce in
the runner (the same reductions, the same layouts, e.g. BADGE's {"h", "q"})
and runs the registry's own `select` on it, so the ids are those the runner
would pick from the same arrays. Inputs may be NumPy or JAX arrays; every
shape, dtype and budget is checked first, with one ValueError naming the
argument. Strategies that need the model while selecting (gradients,
adversarial steps, extra networks trained alongside) are refused in one line.
"""

import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from al_jax import mc, strategies
from al_jax.strategies import bayesian, uncertainty
from al_jax.strategies.base import PoolView

# What each array-level strategy reads. "probs": `logits` or `probs` [N, C];
# "mc": `mc_log_probs` [N, K, C]; "emb": `embeddings` [N, D].
_UNCERTAINTY = {"least_confidence": uncertainty.least_confidence_from_logp,
                "entropy": mc.entropy,
                "margin": uncertainty.neg_margin_from_logp}
_MC_TOP_K = {"bayesian_lc": mc.least_confidence, "bayesian_entropy": mc.predictive_entropy,
             "bald": mc.mutual_information, "variation_ratios": mc.variation_ratios,
             "mean_std": mc.mean_std}
_MC_POWER = {"power_bald": mc.mutual_information, "power_entropy": mc.predictive_entropy}
_EMBEDDING = {"coreset": False, "coreset_mip": False, "kmeans": None, "typiclust": True,
              "probcover": True}  # value: L2-normalised (None: the `normalize` keyword).

NEEDS: dict[str, tuple[str, ...]] = {
    "random": (),
    **{n: ("probs",) for n in _UNCERTAINTY},
    **{n: ("mc",) for n in (*_MC_TOP_K, *_MC_POWER, "batchbald")},
    **{n: ("emb",) for n in _EMBEDDING},
    "cluster_margin": ("emb", "probs"),
    "badge": ("emb", "probs"),
}
ARRAY_STRATEGIES = tuple(NEEDS)

_ARG = {"probs": "logits or probs", "mc": "mc_log_probs", "emb": "embeddings"}


def _err(msg: str) -> ValueError:
  return ValueError(msg)


def _as_float(name: str, a, ndim: int, what: str) -> np.ndarray:
  """A finite float array of rank `ndim`, else a ValueError naming `name`."""
  try:
    arr = np.asarray(a)
  except Exception as e:  # noqa: BLE001 - anything not array-like.
    raise _err(f"{name} must be an array, got {type(a).__name__} ({e})") from None
  if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or
                               np.issubdtype(arr.dtype, np.integer)):
    raise _err(f"{name} must be a float array {what}, got dtype {arr.dtype}")
  if arr.ndim != ndim:
    raise _err(f"{name} must be {what}, got shape {arr.shape}")
  arr = arr.astype(np.float32)
  if not np.isfinite(arr).all() and name != "mc_log_probs":
    raise _err(f"{name} holds {int((~np.isfinite(arr)).sum())} non-finite values")
  return arr


def _check_inputs(name, logits, probs, mc_log_probs, embeddings) -> dict:
  """Checked float32 host arrays of the inputs `name` uses; rejects the rest."""
  given = {"logits": logits, "probs": probs, "mc_log_probs": mc_log_probs,
           "embeddings": embeddings}
  needs = NEEDS[name]
  used = set()
  if "probs" in needs:
    used |= {"logits", "probs"}
  if "mc" in needs:
    used.add("mc_log_probs")
  if "emb" in needs:
    used.add("embeddings")
  extra = sorted(k for k, v in given.items() if v is not None and k not in used)
  if extra:
    wants = " and ".join(_ARG[n] for n in needs) or "no arrays (only labelled)"
    raise _err(f"strategy '{name}' uses {wants}; {', '.join(extra)} would be ignored: "
               f"do not pass {'it' if len(extra) == 1 else 'them'}")
  out = {}
  if "probs" in needs:
    if (logits is None) == (probs is None):
      raise _err(f"strategy '{name}' needs exactly one of logits or probs ([N, C])")
    if logits is not None:
      out["logits"] = _as_float("logits", logits, 2, "[N, C]")
      c = out["logits"].shape[1]
    else:
      p = _as_float("probs", probs, 2, "[N, C]")
      if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise _err("probs must be non-negative with rows summing to 1 (pass logits instead "
                   "for unnormalised scores)")
      out["probs"], c = p, p.shape[1]
    if c < 2:
      raise _err(f"{'logits' if logits is not None else 'probs'} needs at least 2 classes, "
                 f"got {c}")
  if "mc" in needs:
    if mc_log_probs is None:
      raise _err(f"strategy '{name}' needs mc_log_probs ([N, K, C] MC-dropout log-probabilities)")
    lp = _as_float("mc_log_probs", mc_log_probs, 3, "[N, K, C] log-probabilities")
    if lp.shape[2] < 2:
      raise _err(f"mc_log_probs needs at least 2 classes, got shape {lp.shape}")
    if np.isnan(lp).any() or (lp > 1e-3).any():
      raise _err("mc_log_probs must be log-probabilities (<= 0, no NaN); "
                 "pass jax.nn.log_softmax(logits) of each MC sample")
    total = np.exp(lp.astype(np.float64)).sum(-1)
    if not np.allclose(total, 1.0, atol=1e-3):
      raise _err("mc_log_probs: exp(mc_log_probs) must sum to 1 over classes (last axis); "
                 f"got sums from {total.min():.4g} to {total.max():.4g}")
    out["mc_log_probs"] = lp
  if "emb" in needs:
    if embeddings is None:
      raise _err(f"strategy '{name}' needs embeddings ([N, D])")
    out["embeddings"] = _as_float("embeddings", embeddings, 2, "[N, D]")
  rows = {k: v.shape[0] for k, v in out.items()}
  if len(set(rows.values())) > 1:
    raise _err(f"inputs disagree on the number of rows N: {rows}")
  return out


def _labelled_mask(labelled, n: int | None) -> np.ndarray:
  """A bool mask [N] from a mask or from integer row indices."""
  if labelled is None:
    raise _err("labelled is required: a bool mask [N] or the integer rows already labelled "
               "(an empty list for none)")
  lab = np.asarray(labelled)
  if lab.ndim != 1:
    raise _err(f"labelled must be 1-D (bool mask [N] or row indices), got shape {lab.shape}")
  if lab.dtype == bool:
    if n is not None and len(lab) != n:
      raise _err(f"labelled has {len(lab)} entries but the arrays have N={n} rows")
    return lab.copy()
  if lab.size and not np.issubdtype(lab.dtype, np.integer):
    raise _err(f"labelled must be a bool mask or integer row indices, got dtype {lab.dtype}")
  if n is None:
    raise _err("labelled as row indices needs the number of rows: pass num_rows=N "
               "(or a bool mask)")
  lab = lab.astype(np.int64)
  bad = lab[(lab < 0) | (lab >= n)]
  if len(bad):
    raise _err(f"labelled holds row indices outside [0, {n}): {bad[:5].tolist()}")
  if len(np.unique(lab)) != len(lab):
    raise _err("labelled holds duplicate row indices")
  mask = np.zeros(n, bool)
  mask[lab] = True
  return mask


def _key(key):
  if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
    return jax.random.key(int(key))
  if isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or
                                     (key.dtype == jnp.uint32 and key.shape == (2,))):
    return key
  raise _err(f"key must be an int seed or a jax.random key, got {key!r}")


def _log_probs(arrays: dict) -> jax.Array:
  """[N, C] float32 log-probabilities from logits (as the runner) or probs."""
  if "logits" in arrays:
    return jax.nn.log_softmax(jnp.asarray(arrays["logits"]))
  # Clipped at the smallest normal float: 0 * log 0 stays 0, not NaN.
  return jnp.log(jnp.maximum(jnp.asarray(arrays["probs"]), jnp.finfo(jnp.float32).tiny))


def _normalise(h: jax.Array) -> jax.Array:
  return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)


def features(name: str, arrays: dict, kw: dict):
  """The pytree the strategy's `score` returns for these arrays (see each
  strategy module: the runner's select receives exactly this)."""
  if name == "random":
    n = arrays["_n"]
    return jnp.zeros((n,), jnp.float32)
  if name in _UNCERTAINTY:
    return _UNCERTAINTY[name](_log_probs(arrays))
  if name in _MC_TOP_K or name in _MC_POWER or name == "batchbald":
    lp = jnp.asarray(arrays["mc_log_probs"])
    if name in _MC_TOP_K:
      return _MC_TOP_K[name](lp)
    if name in _MC_POWER:
      return jnp.log(jnp.maximum(_MC_POWER[name](lp), bayesian._POWER_FLOOR))  # noqa: SLF001
    return lp
  h = jnp.asarray(arrays["embeddings"])
  if name in _EMBEDDING:
    norm = _EMBEDDING[name]
    return _normalise(h) if (kw.get("normalize", False) if norm is None else norm) else h
  p = jnp.exp(_log_probs(arrays))
  if name == "cluster_margin":
    top2 = jax.lax.top_k(p, 2)[0]
    return {"emb": h, "margin": top2[:, 0] - top2[:, 1]}
  if name == "badge":
    q = p - jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype)
    if kw.get("bias", False):
      h = jnp.concatenate([h, jnp.ones_like(h[:, :1])], axis=-1)
    return {"h": h, "q": q}
  raise AssertionError(name)


def select(name: str, budget: int, *, labelled, key: Any = 0, logits=None, probs=None,
           mc_log_probs=None, embeddings=None, num_classes: int | None = None,
           num_rows: int | None = None, return_scores: bool = False, **kw):
  """Picks `budget` unlabelled rows with strategy `name` from your arrays.

  Args:
    name: an array-level strategy (`ARRAY_STRATEGIES`).
    budget: how many rows to pick; at most the number of unlabelled rows.
    labelled: bool mask [N], or the integer indices of the labelled rows.
    key: int seed or jax.random key (random tie-breaks, k-means, sampling).
    logits: [N, C] model outputs (uncertainty family, cluster_margin, badge);
      or `probs` [N, C] softmax probabilities instead.
    mc_log_probs: [N, K, C] log-probabilities of K MC-dropout passes
      (Bayesian family, BatchBALD, Power*).
    embeddings: [N, D] penultimate features (coreset, coreset_mip, kmeans,
      typiclust, probcover, cluster_margin, badge).
    num_classes: probcover's number of k-means clusters for its purity
      heuristic (default: C of logits/probs; needed when only embeddings are
      passed, unless delta > 0).
    num_rows: N, when only `random` is used with integer `labelled` indices.
    return_scores: also return the score each pick was chosen with.
    **kw: the strategy's own keywords (e.g. beta=2.0, max_clusters=100).

  Returns:
    np.ndarray int64 [budget] of row indices (never labelled, unique); with
    return_scores, a pair (ids, scores [budget] float32).

  Raises:
    ValueError: unknown strategy, one that needs the model, or bad arrays,
      budget or keywords (the message names the argument).
  """
  if name not in strategies.STRATEGIES:
    raise _err(f"Unknown strategy '{name}'; known: {sorted(strategies.STRATEGIES)}")
  if name not in NEEDS:
    raise _err(f"strategy '{name}' needs the model while selecting (gradients, perturbations "
               f"or networks trained alongside), so it has no array-level form: run it with "
               f"`al-jax run` / al_jax.loop.run; array-level strategies: {list(ARRAY_STRATEGIES)}")
  arrays = _check_inputs(name, logits, probs, mc_log_probs, embeddings)
  n = next(iter(arrays.values())).shape[0] if arrays else num_rows
  if arrays and num_rows is not None and num_rows != n:
    raise _err(f"num_rows={num_rows} but the arrays have N={n} rows")
  lab = _labelled_mask(labelled, n)
  n = len(lab)
  if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
    raise _err(f"budget must be an int, got {budget!r}")
  budget = int(budget)
  unl = int(n - lab.sum())
  if budget < 1:
    raise _err(f"budget must be >= 1, got {budget}")
  if budget > unl:
    raise _err(f"budget ({budget}) exceeds the {unl} unlabelled rows (N={n}, "
               f"{int(lab.sum())} labelled)")
  if name == "probcover" and not kw.get("delta"):
    c = num_classes or (arrays.get("logits", arrays.get("probs", np.zeros((0, 0)))).shape[1]
                        or None)
    if not c:
      raise _err("probcover needs num_classes (its purity heuristic clusters into one cluster "
                 "per class) or delta > 0")
    num_classes = int(c)
  arrays["_n"] = n
  # The factories read only `num_classes` from the model's Functional.
  fns = types.SimpleNamespace(num_classes=num_classes)
  strategy = strategies.get(name, fns, **kw)
  feats = features(name, arrays, kw)
  pool = PoolView(ids=jnp.arange(n, dtype=jnp.int32), valid=jnp.ones(n, bool),
                  labelled=jnp.asarray(lab), labels=jnp.full(n, -1, jnp.int32))
  fn = jax.jit(strategy.select, static_argnums=2) if strategy.jit_select else strategy.select
  ids, scores = fn(feats, pool, budget, _key(key))
  ids = np.asarray(ids).astype(np.int64)
  if return_scores:
    return ids, np.asarray(scores, np.float32)
  return ids
