"""Learning-rate schedules from config.train.schedule, traced so rounds share one compile.

A round trains `total` steps (epochs x ceil(n_labelled / B)), which changes
from round to round. The schedule is therefore a jnp function of the step,
the round's total steps and its steps per epoch, all traced: the epoch
compiles once per run. The optimiser holds its learning rate as state
(`optax.inject_hyperparams`), set from the schedule before every update.

config.train.schedule fields:
  name        constant | multistep | cosine
  milestones  multistep: where the rate is multiplied by `factor` (tuple)
  unit        epochs | steps: the unit of `milestones` and `warmup`
  factor      multistep: the multiplier at each milestone (e.g. 0.1)
  alpha       cosine: the final rate as a fraction of the peak
  warmup      linear warm-up from 0 to the rate over this many units
              (before a multistep or cosine decay, or a constant rate)
"""

from typing import Callable

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


def injectable(build: Callable[[float], optax.GradientTransformation],
               base_lr: float) -> optax.GradientTransformation:
  """`build(learning_rate)` with the rate kept in the optimiser state (set_lr changes it)."""
  return optax.inject_hyperparams(build)(learning_rate=base_lr)


def set_lr(opt_state, lr):
  """`opt_state` of an `injectable` optimiser with the learning rate replaced by `lr`."""
  hyper = dict(opt_state.hyperparams)
  hyper["learning_rate"] = jnp.asarray(lr, hyper["learning_rate"].dtype)
  return opt_state._replace(hyperparams=hyper)


def step_count(opt_state):
  """Updates applied so far this round by an `injectable` optimiser."""
  return opt_state.count
