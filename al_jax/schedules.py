"""Learning-rate schedules from config.train.schedule, traced so rounds share one compile.

A round trains `total` steps (epochs x ceil(n_labelled / B)), which changes
from round to round. The schedule is therefore a jnp function of the step,
the round's total steps and its steps per epoch, all traced: the epoch
compiles once per run. A `scheduled` optimiser keeps the round's length and
its learning rate in its state (`optax.inject_hyperparams` inside) and sets
the rate from the schedule at every update; the trainer tells every such
state the round's length (`set_round`), the model's optimiser and any
auxiliary one a strategy keeps in its extension state alike.

config.train.schedule fields:
  name        constant | multistep | cosine
  milestones  multistep: where the rate is multiplied by `factor` (tuple)
  unit        epochs | steps: the unit of `milestones` and `warmup`
  factor      multistep: the multiplier at each milestone (e.g. 0.1)
  alpha       cosine: the final rate as a fraction of the peak
  warmup      linear warm-up from 0 to the rate over this many units
              (before a multistep or cosine decay, or a constant rate)
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

NAMES = ("constant", "multistep", "cosine")
UNITS = ("epochs", "steps")


def make(schedule, base_lr: float) -> Callable | None:
  """The schedule of config.train.schedule, or None for a constant rate without warm-up.

  Args:
    schedule: config.train.schedule (any mapping with the fields above), or None.
    base_lr: config.train.learning_rate, the peak rate.

  Returns:
    lr(step, total, per_epoch) -> the rate of update number `step` (0-based)
    of a round of `total` steps with `per_epoch` steps per epoch; None when
    the rate never changes (the optimiser then keeps a constant rate).

  Raises:
    ValueError: an unknown name or unit, or a negative milestone / warm-up.
  """
  if schedule is None:
    return None
  name = schedule.get("name", "constant")
  unit = schedule.get("unit", "epochs")
  if name not in NAMES:
    raise ValueError(f"Unknown train.schedule.name '{name}'; known: {list(NAMES)}")
  if unit not in UNITS:
    raise ValueError(f"Unknown train.schedule.unit '{unit}'; known: {list(UNITS)}")
  milestones = tuple(int(m) for m in schedule.get("milestones", ()) or ())
  warmup = float(schedule.get("warmup", 0) or 0)
  if warmup < 0 or any(m < 0 for m in milestones):
    raise ValueError(f"train.schedule: warmup ({warmup}) and milestones ({milestones}) "
                     f"must be >= 0")
  if name == "constant" and not warmup:
    return None
  factor = float(schedule.get("factor", 0.1))
  alpha = float(schedule.get("alpha", 0.0))

  def lr(step, total, per_epoch):
    scale = per_epoch if unit == "epochs" else 1
    step = jnp.asarray(step, jnp.float32)
    w = jnp.asarray(warmup * scale, jnp.float32)
    if name == "multistep":
      passed = sum((step >= m * scale).astype(jnp.float32) for m in milestones)
      main = base_lr * factor ** passed
    elif name == "cosine":  # over the steps after the warm-up, as optax's warmup_cosine
      span = jnp.maximum(jnp.asarray(total, jnp.float32) - w, 1.0)
      frac = jnp.clip((step - w) / span, 0.0, 1.0)
      main = base_lr * (alpha + (1 - alpha) * 0.5 * (1 + jnp.cos(jnp.pi * frac)))
    else:
      main = jnp.asarray(base_lr, jnp.float32)
    return jnp.where(step < w, base_lr * step / jnp.maximum(w, 1.0), main)

  return lr


class ScheduledState(NamedTuple):
  """State of a `scheduled` optimiser: its step, the round's length, the inner state."""
  count: jax.Array  # updates applied this round
  total: jax.Array  # the round's steps (set by set_round)
  per_epoch: jax.Array  # the round's steps per epoch (set by set_round)
  inner: optax.OptState  # optax.inject_hyperparams state: the rate is a state entry


def scheduled(build: Callable[[float], optax.GradientTransformation],
              lr_at: Callable) -> optax.GradientTransformation:
  """`build(learning_rate)` whose rate follows `lr_at` (from `make`).

  The round's length lives in the state, so a jitted epoch serves every
  round: the trainer calls `set_round` on its optimiser states (the model's
  and any auxiliary one inside a strategy's extension state) at each epoch.
  """
  inner = optax.inject_hyperparams(build)(learning_rate=0.0)

  def init(params):
    one = jnp.ones((), jnp.int32)
    return ScheduledState(jnp.zeros((), jnp.int32), one, one, inner.init(params))

  def update(updates, state, params=None):
    hyper = dict(state.inner.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr_at(state.count, state.total, state.per_epoch),
                                         hyper["learning_rate"].dtype)
    updates, inner_state = inner.update(updates, state.inner._replace(hyperparams=hyper), params)
    return updates, state._replace(count=state.count + 1, inner=inner_state)

  return optax.GradientTransformation(init, update)


def set_round(tree, total, per_epoch):
  """`tree` with every ScheduledState in it told the round's steps and steps per epoch."""
  def tell(s):
    if not isinstance(s, ScheduledState):
      return s
    return s._replace(total=jnp.asarray(total, jnp.int32),
                      per_epoch=jnp.asarray(per_epoch, jnp.int32))
  return jax.tree_util.tree_map(tell, tree, is_leaf=lambda s: isinstance(s, ScheduledState))


def learning_rate(state) -> jax.Array:
  """The rate a ScheduledState applied last (for logs and tests)."""
  return state.inner.hyperparams["learning_rate"]
