"""Forgetting events: counts on a hand-made sequence, the training hook,
the query's use of the counters."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from al_jax import models, sharding, strategies, train
from al_jax.strategies import forgetting
from al_jax.strategies.base import PoolView


def test_counts_on_a_hand_made_sequence():
  # 4 rows, labels y; rows 0-2 labelled, row 3 unlabelled (its y is the
  # oracle's and must not be read).
  y = jnp.array([0, 1, 2, 0])
  labelled = jnp.array([True, True, True, False])
  preds = [[0, 0, 1, 0],   # row 0 correct
           [1, 1, 1, 1],   # row 0 forgets (1), row 1 learns
           [0, 2, 1, 1],   # row 1 forgets (1), row 0 relearns
           [1, 1, 1, 2],   # row 0 forgets (2), row 1 relearns
           [1, 0, 0, 2]]   # row 1 forgets (2)
  state = forgetting.init_counts(4)
  for p in preds:
    state = forgetting.update_counts(state, jnp.array(p), y, labelled)
  np.testing.assert_array_equal(state["forgets"], [2, 2, 0, 0])
  # Row 2 was never correct: scored as the number of epochs (5). (Row 3 is
  # unlabelled: its pruning score means nothing.)
  np.testing.assert_array_equal(forgetting.forgetting_scores(state)[:3], [2, 2, 5])
  # Label flips across epochs: row 0 0,1,0,1,1 -> 3; row 1 0,1,2,1,0 -> 4;
  # row 2 1,1,1,1,0 -> 1; row 3 0,1,1,2,2 -> 2 (the oracle label 0 is unused).
  np.testing.assert_array_equal(state["flips"], [3, 4, 1, 2])
  assert int(state["epochs"]) == 5


def test_unlabelled_oracle_labels_do_not_leak():
  s = forgetting.init_counts(2)
  for p in ([0, 0], [1, 1], [0, 0]):
    s = forgetting.update_counts(s, jnp.array(p), jnp.array([0, 0]), jnp.array([True, False]))
  assert int(s["forgets"][1]) == 0 and not bool(s["ever_correct"][1])


def test_training_hook_records_one_update_per_epoch():
  rng = np.random.default_rng(0)
  n = 64
  x = rng.normal(size=(n, 4)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int32)
  labelled = np.arange(n) < 24
  fns = models.build("mlp", (4,), 2, hidden=(8,))
  mesh = sharding.make_mesh([("data", 1)])  # sharding: tests/test_loop.py (1 vs 8)
  cfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=8,
                                       num_epochs=6, min_steps=0, weight_decay=0.0))
  strat = strategies.get("forgetting", fns, chunk=16)
  fit = train.make_fit(fns, cfg, mesh, extension=strat.extension)
  params, rest = fns.init(jax.random.key(0))
  params, rest, ext, _ = fit(params, rest, *(sharding.shard_rows(mesh, a) for a in (x, y, labelled)),
                             jax.random.key(1))
  assert int(ext["epochs"]) == 6
  # The last recorded predictions are the final model's.
  np.testing.assert_array_equal(ext["prev_pred"], jnp.argmax(fns.apply(params, rest, x)[0], -1))
  assert np.all(np.asarray(ext["flips"]) <= 5)
  # The query ranks unlabelled rows by flips (ties by entropy), from ext.
  ids = np.where(np.arange(n) < 60, np.arange(n), -1).astype(np.int32)
  pool = PoolView(jnp.asarray(ids), jnp.asarray(ids >= 0), jnp.asarray(labelled),
                  jnp.full(n, -1, jnp.int32))
  tie = strat.score(params, rest, {"x": jnp.asarray(x)}, None, ext=ext)
  sel, _ = strat.select(tie, pool, 10, jax.random.key(0), ext=ext)
  flips = np.asarray(ext["flips"], np.float64)
  total = flips + 0.5 * np.minimum(np.asarray(tie), 0.999)
  unl = np.flatnonzero((ids >= 0) & ~labelled)
  np.testing.assert_array_equal(sel, unl[np.argsort(-total[unl], kind="stable")[:10]])
  assert np.all(np.diff(flips[np.asarray(sel)]) <= 0)


def test_bad_options_fail_loudly():
  with pytest.raises(ValueError, match="tie_break"):
    strategies.get("forgetting", None, tie_break="loss")
