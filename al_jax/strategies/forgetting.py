"""Forgetting events (Toneva et al., ICLR 2019) as AL and pruning scores.

After every training epoch (TrainExtension.after_epoch) the model
predicts the whole padded pool once (eval mode) and the extension state
counts, per row:
  forgets: correct -> incorrect transitions of labelled rows (true labels);
           the pruning score (`forgetting_scores`): rows never predicted
           correctly get the number of epochs, as FGT gives them
           `npresentations` (mansheej/data_diet gives them infinity);
  flips:   epochs whose predicted label differs from the previous epoch's:
           the AL score of unlabelled rows (their labels are unknown, so
           "forgetting" becomes prediction instability).
Only labelled rows' labels are read: `y` holds the oracle labels of the
whole pool and must not leak into the unlabelled rows' scores.

Deliberate differences from the reference code (mtoneva/example_forgetting,
mansheej/data_diet): correctness is recorded once per epoch for every row at
the same weights, in eval mode (no augmentation, no dropout), instead of from
each row's own augmented mini-batch presentation; so counts do not depend on
batch order and unlabelled rows are tracked the same way. The cost is one
forward pass over the pool per epoch.
"""

import jax
import jax.numpy as jnp

from al_jax import mc, sharding
from al_jax.strategies.base import Strategy, TrainExtension, top_k

TIE_BREAKS = ("entropy", "random", "none")


def init_counts(num_rows: int) -> dict:
  """Fresh counters for a padded pool of num_rows."""
  return {"prev_correct": jnp.zeros((num_rows,), bool),
          "ever_correct": jnp.zeros((num_rows,), bool),
          "forgets": jnp.zeros((num_rows,), jnp.int32),
          "prev_pred": jnp.full((num_rows,), -1, jnp.int32),
          "flips": jnp.zeros((num_rows,), jnp.int32),
          "epochs": jnp.zeros((), jnp.int32)}


def update_counts(state: dict, pred: jax.Array, y: jax.Array, labelled: jax.Array) -> dict:
  """One epoch's predictions [N] into the counters (pure)."""
  correct = (pred == y) & labelled
  forgot = state["prev_correct"] & ~correct & labelled
  flipped = (state["prev_pred"] >= 0) & (pred != state["prev_pred"])
  return {"prev_correct": correct,
          "ever_correct": state["ever_correct"] | correct,
          "forgets": state["forgets"] + forgot.astype(jnp.int32),
          "prev_pred": pred.astype(jnp.int32),
          "flips": state["flips"] + flipped.astype(jnp.int32),
          "epochs": state["epochs"] + 1}


def forgetting_scores(state: dict) -> jax.Array:
  """[N] pruning score of labelled rows: forgetting events, or the number of
  epochs for rows never learnt (most forgettable). Higher = harder.
  Unlabelled rows are never "correct", so their entries mean nothing."""
  return jnp.where(state["ever_correct"], state["forgets"], state["epochs"]).astype(jnp.float32)


def predict_pool(fns, params, rest, x, chunk: int = 512) -> jax.Array:
  """[N] argmax predictions over the whole pool in fixed-size chunks."""
  return sharding.chunked_map(lambda b: jnp.argmax(fns.apply(params, rest, b)[0], -1), x, chunk)


def extension(fns, chunk: int = 512) -> TrainExtension:
  """The training extension that records the counters each epoch."""
  def init(key, params, rest, x):
    del key, params, rest
    return init_counts(x.shape[0])

  def after_epoch(params, rest, ext, x, y, labelled, epoch):
    del epoch
    return update_counts(ext, predict_pool(fns, params, rest, x, chunk), y, labelled)

  return TrainExtension(init=init, after_epoch=after_epoch)


def forgetting(fns, *, tie_break: str = "entropy", chunk: int = 512) -> Strategy:
  """Queries the unlabelled rows whose predicted label flipped most often.

  Args:
    fns: the model's `models.Functional`.
    tie_break: many rows share a flip count (often 0); ties are broken by
      "entropy" (the final model's normalised predictive entropy, most
      uncertain first), "random", or "none" (lowest position first).
    chunk: pool rows per forward pass in the per-epoch prediction.
  """
  if tie_break not in TIE_BREAKS:
    raise ValueError(f"forgetting tie_break must be one of {list(TIE_BREAKS)}, got {tie_break!r}")

  def score(params, rest, batch, key, ext=None):
    del key, ext
    if tie_break != "entropy":
      return jnp.zeros((batch["x"].shape[0],), jnp.float32)
    logp = jax.nn.log_softmax(fns.apply(params, rest, batch["x"])[0].astype(jnp.float32))
    return mc.entropy(logp) / jnp.log(logp.shape[-1])  # in [0, 1]

  def rank(tie, pool, key, ext):
    flips = ext["flips"][jnp.maximum(pool.ids, 0)].astype(jnp.float32)
    if tie_break == "random":
      tie = jax.random.uniform(key, flips.shape)
    # Tie-breakers lie in [0, 1) * 0.5: they never reorder different counts.
    return flips + 0.5 * jnp.minimum(tie, 0.999)

  return Strategy(score, top_k(rank), extension=extension(fns, chunk))
