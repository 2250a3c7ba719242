"""Test metrics as jitted masked sums over the padded test set."""

import jax
import jax.numpy as jnp

from al_jax import sharding


def calibration_error(probs: jax.Array, labels: jax.Array, valid: jax.Array,
                      num_bins: int = 15) -> jax.Array:
  """Expected calibration error with equal-width confidence bins.

  sum_b (n_b / N) |conf_b - acc_b| = sum_b |sum conf - sum correct| / N.
  """
  conf = jnp.max(probs, -1)
  correct = (jnp.argmax(probs, -1) == labels).astype(jnp.float32)
  w = valid.astype(jnp.float32)
  bins = jnp.clip((conf * num_bins).astype(jnp.int32), 0, num_bins - 1)
  conf_sum = jnp.zeros(num_bins).at[bins].add(conf * w)
  acc_sum = jnp.zeros(num_bins).at[bins].add(correct * w)
  return jnp.sum(jnp.abs(conf_sum - acc_sum)) / jnp.maximum(jnp.sum(w), 1.0)


def make_evaluate(fns, batch_size: int, mesh=None, preprocess=None):
  """Returns evaluate(params, rest, x, y, valid) -> {accuracy, nll, ece}.

  preprocess: x -> float input per batch, inside the jit (uint8 test sets).
  """
  prep = preprocess or (lambda a: a)

  @jax.jit
  def evaluate(params, rest, x, y, valid):
    logp = sharding.chunked_map(
        lambda xb: jax.nn.log_softmax(fns.apply(params, rest, prep(xb))[0]), x, batch_size, mesh)
    w = valid.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(w), 1.0)
    safe_y = jnp.maximum(y, 0)
    nll = -jnp.take_along_axis(logp, safe_y[:, None], axis=-1)[:, 0]
    acc = jnp.sum((jnp.argmax(logp, -1) == y) * w) / n
    return {"accuracy": acc, "nll": jnp.sum(nll * w) / n,
            "ece": calibration_error(jnp.exp(logp), y, valid)}

  return evaluate
