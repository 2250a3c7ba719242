"""al_jax.select: the runner's ids from plain arrays, and one clear error per bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import al_jax
from al_jax import api, mc, models, strategies
from al_jax.strategies.base import PoolView

N, D, C, BUDGET = 48, 8, 4, 5
# Keywords that keep the tiny cases fast, and ones that change the features.
KW = {"bald": {"num_samples": 4},
      "batchbald": {"num_samples": 4, "num_configs": 16, "refine": ((8, 64),)},
      "typiclust": {"min_cluster_size": 1, "num_iters": 10}, "kmeans": {"num_iters": 10},
      "probcover": {"num_iters": 10}, "cluster_margin": {"margin_multiple": 3}}
CASES = [(n, KW.get(n, {})) for n in api.ARRAY_STRATEGIES] + [
    ("kmeans", {"normalize": True}), ("badge", {"bias": True}),
    ("power_bald", {"beta": 3.0}), ("probcover", {"delta": 0.9})]


@pytest.fixture(scope="module")
def model():
  fns = models.build("mlp", (D,), C, hidden=(16,), dropout=0.3)
  params, rest = models.jit_init(fns)(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (N, D))
  labelled = np.zeros(N, bool)
  labelled[np.random.default_rng(0).choice(N, 7, replace=False)] = True
  return fns, params, rest, x, labelled


def runner_ids(name, kw, fns, params, rest, x, labelled, score_key, select_key, monkeypatch):
  """What loop.run does for one round: the strategy's own score, then its select.

  Returns (ids, the MC log-probabilities the score drew, or None)."""
  seen = {}
  real = mc.log_probs

  def recording(*args, **kwargs):
    seen["logp"] = real(*args, **kwargs)
    return seen["logp"]

  monkeypatch.setattr(mc, "log_probs", recording)
  strategy = strategies.get(name, fns, **kw)
  ids = jnp.arange(N, dtype=jnp.int32)
  feats = strategy.score(params, rest, {"x": x, "ids": ids}, score_key)
  pool = PoolView(ids, jnp.ones(N, bool), jnp.asarray(labelled), jnp.full(N, -1, jnp.int32))
  select = jax.jit(strategy.select, static_argnums=2) if strategy.jit_select else strategy.select
  out, _ = select(feats, pool, BUDGET, select_key)
  return np.asarray(out), seen.get("logp")


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_same_ids_as_the_runner(name, kw, model, monkeypatch):
  fns, params, rest, x, labelled = model
  select_key = jax.random.key(7)
  want, logp = runner_ids(name, kw, fns, params, rest, x, labelled, jax.random.key(5),
                          select_key, monkeypatch)
  needs = api.NEEDS[name]
  arrays = {}
  if "probs" in needs:
    arrays["logits"] = np.asarray(fns.apply(params, rest, x)[0])  # NumPy in.
  if "emb" in needs:
    arrays["embeddings"] = fns.apply(params, rest, x)[1]["pre_logits"]  # JAX in.
  if "mc" in needs:
    arrays["mc_log_probs"] = np.asarray(logp)
  got = al_jax.select(name, BUDGET, labelled=labelled, key=select_key, num_classes=C,
                      **arrays, **kw)
  assert isinstance(got, np.ndarray) and got.shape == (BUDGET,)
  np.testing.assert_array_equal(got, want)
  assert not labelled[got].any() and len(set(got.tolist())) == BUDGET
  # Integer row indices for `labelled` mean the same as the mask.
  again = al_jax.select(name, BUDGET, labelled=np.flatnonzero(labelled).tolist(),
                        key=select_key, num_classes=C, num_rows=N, **arrays, **kw)
  np.testing.assert_array_equal(again, want)


def test_probs_and_logits_agree():
  logits = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
  probs = np.asarray(jax.nn.softmax(logits))
  for name in ("least_confidence", "entropy", "margin"):
    a = al_jax.select(name, 6, labelled=[0, 1], logits=logits)
    b = al_jax.select(name, 6, labelled=[0, 1], probs=probs)
    np.testing.assert_array_equal(a, b)
    # Brute force: the 6 highest NumPy scores among unlabelled rows.
    s = {"least_confidence": 1 - probs.max(1),
         "entropy": -(probs * np.log(probs)).sum(1),
         "margin": -np.diff(np.sort(probs, 1)[:, -2:], axis=1)[:, 0]}[name]
    s[[0, 1]] = -np.inf
    assert set(a) == set(np.argsort(-s)[:6])


def test_random_needs_only_the_labelled_set():
  ids = al_jax.select("random", 4, labelled=np.eye(1, 10, 3, dtype=bool)[0], key=1)
  assert len(set(ids)) == 4 and 3 not in ids
  np.testing.assert_array_equal(ids, al_jax.select("random", 4, labelled=[3], num_rows=10,
                                                   key=1))
  ids, scores = al_jax.select("random", 9, labelled=[3], num_rows=10, return_scores=True)
  assert sorted(ids) == [i for i in range(10) if i != 3] and scores.shape == (9,)


LOGITS = np.zeros((10, 3), np.float32)
LAB = np.zeros(10, bool)
BAD = [
    (dict(name="entropy", budget=10, labelled=np.eye(1, 10, 0, dtype=bool)[0], logits=LOGITS),
     r"budget \(10\) exceeds the 9 unlabelled rows"),
    (dict(name="entropy", budget=0, labelled=LAB, logits=LOGITS), r"budget must be >= 1"),
    (dict(name="entropy", budget=2.0, labelled=LAB, logits=LOGITS), r"budget must be an int"),
    (dict(name="entropy", budget=2, labelled=LAB), r"exactly one of logits or probs"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS, probs=LOGITS + 1 / 3),
     r"exactly one of logits or probs"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS[0]), r"logits must be \[N, C\]"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS[:, :1]), r"logits needs at least 2"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS + np.nan), r"logits holds 30 non"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS.astype(str)), r"logits must be a float"),
    (dict(name="entropy", budget=2, labelled=LAB, probs=LOGITS + 0.5), r"probs must be non-negative"),
    (dict(name="entropy", budget=2, labelled=LAB[:9], logits=LOGITS), r"labelled has 9 entries"),
    (dict(name="entropy", budget=2, labelled=[10], logits=LOGITS), r"labelled holds row indices outside"),
    (dict(name="entropy", budget=2, labelled=[1, 1], logits=LOGITS), r"labelled holds duplicate"),
    (dict(name="entropy", budget=2, labelled=[0.5], logits=LOGITS), r"labelled must be a bool mask"),
    (dict(name="entropy", budget=2, labelled=None, logits=LOGITS), r"labelled is required"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS, embeddings=LOGITS),
     r"'entropy' uses logits or probs; embeddings would be ignored"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS, key="a"), r"key must be"),
    (dict(name="entropy", budget=2, labelled=LAB, logits=LOGITS, tau=1), r"unknown options \['tau'\]"),
    (dict(name="bald", budget=2, labelled=LAB), r"needs mc_log_probs"),
    (dict(name="bald", budget=2, labelled=LAB, mc_log_probs=np.zeros((10, 2, 3))),
     r"exp\(mc_log_probs\) must sum to 1"),
    (dict(name="bald", budget=2, labelled=LAB, mc_log_probs=np.zeros((10, 3))),
     r"mc_log_probs must be \[N, K, C\]"),
    (dict(name="coreset", budget=2, labelled=LAB), r"'coreset' needs embeddings"),
    (dict(name="badge", budget=2, labelled=LAB, logits=LOGITS, embeddings=LOGITS[:9]),
     r"inputs disagree on the number of rows"),
    (dict(name="probcover", budget=2, labelled=LAB, embeddings=LOGITS), r"probcover needs num_classes"),
    (dict(name="random", budget=2, labelled=[1]), r"needs the number of rows: pass num_rows"),
    (dict(name="vaal", budget=2, labelled=LAB), r"'vaal' needs the model while selecting"),
    (dict(name="nope", budget=2, labelled=LAB), r"Unknown strategy 'nope'"),
]


@pytest.mark.parametrize("kwargs,match", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_is_one_clear_value_error(kwargs, match):
  kwargs = dict(kwargs)
  with pytest.raises(ValueError, match=match):
    al_jax.select(kwargs.pop("name"), kwargs.pop("budget"), **kwargs)


def test_every_model_free_strategy_is_covered():
  # A strategy is array-level iff its selection needs no model; the rest are refused.
  model_bound = sorted(set(strategies.STRATEGIES) - set(api.ARRAY_STRATEGIES))
  assert {"egl", "ll4al", "vaal", "waal", "dfal", "alfa_mix"} <= set(model_bound)
  assert set(api.ARRAY_STRATEGIES) <= set(strategies.STRATEGIES)
