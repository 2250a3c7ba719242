"""The strategy contract: a pair of pure functions (optax style).

score(params, rest, batch, key, ext=None) -> per-example pytree, leading axis B:
    a scalar score (higher = query first) or features for `select`.
    `batch` is {"x": [B, ...]}. The same `key` is passed for every batch, so
    per-network randomness (MC dropout masks) is shared by all pool points.
select(features, pool, budget, key, ext=None) -> (ids[budget], scores[budget]):
    `features` is the score output for the whole fixed-size padded pool,
    `pool` a PoolView; `budget` is a static int. Returns global ids (unique,
    never labelled, never padding) and the score each was picked with.

`ext` is the final state of the strategy's TrainExtension, None for
strategies without one. The loop always passes it (positionally), so every
score and select takes it, with the default None for direct calls.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from al_jax.kernels import topk

ScoreFn = Callable[..., Any]
SelectFn = Callable[..., tuple[jax.Array, jax.Array]]


class TrainExtension(NamedTuple):
  """How a strategy shapes training; every field but `init` is optional.

  The extension's state `ext` is a dict pytree created fresh each round by
  `init(key, params, rest, x) -> ext`, x the padded pool as stored (read its
  shape: x.shape[0] rows, x.shape[1:] one input; a uint8 pool stays uint8).
  If it holds "params", they are trained with `tx` (state kept in
  ext["opt"]) from the gradient of `loss`.

  loss(params, rest, ext, batch, key, epoch) -> (loss, (new_rest, logits))
      replaces the default cross-entropy; differentiated w.r.t. the model
      params and ext["params"]. batch = {"x", "y", "w"} (labelled rows only;
      w = 0 on wrap-around rows) plus "x_u" (B unlabelled rows, no labels)
      when `needs_unlabelled`. The aux may hold a third element, a dict
      that after_step finds merged into its batch (what the loss's forward
      pass computed, e.g. WAAL's train-mode embeddings).
  after_step(params, rest, ext, batch, key, epoch) -> ext
      runs after each model update (e.g. a WAAL critic step).
  after_epoch(params, rest, ext, x, y, labelled, epoch) -> ext
      runs after each epoch over the whole padded pool (e.g. forgetting
      counts from per-example correctness).
  after_fit(params, rest, ext, x, y, labelled) -> ext
      runs once, jitted, after the last epoch (e.g. ISAL's s_test).
  long_epoch: an epoch runs over the longer of the labelled and unlabelled
      rows, cycling the labelled ones (each counted): WAAL's reference zips
      its two loaders to the longer one (cjshui/WAAL dataset_WA.py:89-93).
  The hooks' `y` holds the labels of labelled rows and -1 everywhere else:
  no hook can read an unlabelled row's label.
  """
  init: Callable
  loss: Callable | None = None
  tx: optax.GradientTransformation | None = None
  after_step: Callable | None = None
  after_epoch: Callable | None = None
  needs_unlabelled: bool = False
  after_fit: Callable | None = None
  long_epoch: bool = False


class Strategy(NamedTuple):
  score: ScoreFn
  select: SelectFn
  # False for selections that run host code (scipy MIP, agglomerative
  # clustering); those jit their own array work.
  jit_select: bool = True
  # For strategies that shape training (LL4AL's loss module, WAAL's critic,
  # forgetting counts); score and select then get its final state as `ext`.
  extension: TrainExtension | None = None


class PoolView(NamedTuple):
  """What selection may see of the padded pool (all arrays [N_pad]).

  ids: global ids (-1 on padding). valid: real rows. labelled: in L.
  labels: revealed labels of labelled rows, -1 elsewhere (never the oracle's
  labels of unlabelled rows).
  """
  ids: jax.Array
  valid: jax.Array
  labelled: jax.Array
  labels: jax.Array

  @property
  def unlabelled(self) -> jax.Array:
    return self.valid & ~self.labelled


def no_features(params, rest, batch, key, ext=None):
  """Score function for strategies that need nothing from the model."""
  del params, rest, key, ext
  return jnp.zeros((batch["x"].shape[0],), jnp.float32)


def top_k(transform: Callable | None = None) -> SelectFn:
  """The select of every top-k strategy: the `budget` highest scores.

  Args:
    transform: optional `transform(features, pool, key, ext) -> scores [N]`
      for strategies whose ranking is computed at selection time (VAAL's
      discriminator, forgetting's counts from `ext`).
  Returns:
    select(scores, pool, budget, key, ext=None) -> (ids, scores).
  """
  def select(scores, pool, budget, key, ext=None):
    if transform is not None:
      scores = transform(scores, pool, key, ext)
    return topk.masked_top_k(scores, pool, budget)

  return select
