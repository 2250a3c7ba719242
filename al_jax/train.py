"""Training on the labelled set with fixed-shape minibatches.

Each epoch is one jitted call: a random permutation that puts the labelled
rows first, then a `fori_loop` over ceil(n_labelled / B) steps of B rows;
the wrap-around rows of the last batch get weight 0. Shapes never depend on
how many rows are labelled, so nothing recompiles between rounds.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from al_jax import sharding


class TrainInfo(NamedTuple):
  loss: float
  accuracy: float  # on the training batches (dropout on)
  steps: int
  epochs: int


def make_optimizer(cfg) -> optax.GradientTransformation:
  """optax optimiser from config.train."""
  name = cfg.optimizer
  lr = cfg.learning_rate
  if name == "adam":
    tx = optax.adam(lr)
  elif name == "adamw":
    tx = optax.adamw(lr, weight_decay=cfg.get("weight_decay", 0.0))
  elif name == "sgd":
    tx = optax.sgd(lr, momentum=cfg.get("momentum", 0.0) or None,
                   nesterov=cfg.get("nesterov", False))
  else:
    raise ValueError(f"Unknown train.optimizer '{name}'; known: ['adam', 'adamw', 'sgd']")
  parts = []
  if cfg.get("grad_clip"):
    parts.append(optax.clip(cfg.grad_clip))  # BADGE clamps gradients to 0.1.
  if name != "adamw" and cfg.get("weight_decay", 0.0):
    parts.append(optax.add_decayed_weights(cfg.weight_decay))
  return optax.chain(*parts, tx)


def augment(x: jax.Array, key, kind: str) -> jax.Array:
  """Per-example train-time augmentation: 'none', 'flip' or 'flip_crop'."""
  if kind == "none":
    return x
  if kind not in ("flip", "flip_crop"):
    raise ValueError(f"Unknown data.augment '{kind}'; known: ['none', 'flip', 'flip_crop']")
  k_flip, k_crop = jax.random.split(key)
  flip = jax.random.bernoulli(k_flip, 0.5, (x.shape[0],))
  x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
  if kind == "flip_crop":  # 4-pixel zero padding + random crop (CIFAR recipe).
    h, w = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offs = jax.random.randint(k_crop, (x.shape[0], 2), 0, 9)
    x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(
        img, (o[0], o[1], 0), (h, w, img.shape[-1])))(padded, offs)
  return x


def make_fit(fns, cfg, mesh, augment_kind: str = "none"):
  """Returns fit(params, rest, x, y, labelled, key, show=False) -> (params, rest, TrainInfo).

  x, y: the whole padded pool (device arrays); labelled: [N_pad] bool.
  """
  tx = make_optimizer(cfg)
  bsz = int(cfg.batch_size)
  batch_sharding = NamedSharding(mesh, P(sharding.DATA_AXIS))

  def loss_fn(params, rest, xb, yb, wb, key):
    logits, new_rest = fns.apply_train(params, rest, xb, key)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
    loss = jnp.sum(nll * wb) / jnp.maximum(jnp.sum(wb), 1.0)
    correct = jnp.sum((jnp.argmax(logits, -1) == yb) * wb)
    return loss, (new_rest, correct)

  @jax.jit
  def epoch(params, rest, opt_state, x, y, labelled, key):
    k_perm, k_steps = jax.random.split(key)
    n_lab = jnp.sum(labelled)
    # Labelled rows first, in random order.
    order = jnp.argsort(jnp.where(labelled, jax.random.uniform(k_perm, labelled.shape), 2.0))
    steps = (n_lab + bsz - 1) // bsz

    def step(s, carry):
      params, rest, opt_state, loss_sum, correct, seen, bad = carry
      j = s * bsz + jnp.arange(bsz)
      idx = order[j % n_lab]
      wb = (j < n_lab).astype(jnp.float32)
      k = jax.random.fold_in(k_steps, s)
      k_aug, k_drop = jax.random.split(k)
      xb = jax.lax.with_sharding_constraint(augment(x[idx], k_aug, augment_kind), batch_sharding)
      yb = y[idx]
      (loss, (rest, c)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          params, rest, xb, yb, wb, k_drop)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      bad = bad | ~jnp.isfinite(loss)
      return params, rest, opt_state, loss_sum + loss * wb.sum(), correct + c, seen + wb.sum(), bad

    zero = jnp.zeros((), jnp.float32)
    carry = (params, rest, opt_state, zero, zero, zero, jnp.zeros((), bool))
    params, rest, opt_state, loss_sum, correct, seen, bad = jax.lax.fori_loop(0, steps, step, carry)
    return params, rest, opt_state, loss_sum / seen, correct / seen, bad

  def fit(params, rest, x, y, labelled, key, show: bool = False):
    n_lab = int(np.asarray(labelled).sum())
    if n_lab == 0:
      raise ValueError("Cannot train on an empty labelled set")
    steps_per_epoch = math.ceil(n_lab / bsz)
    epochs = max(int(cfg.num_epochs), math.ceil(cfg.get("min_steps", 0) / steps_per_epoch))
    opt_state = tx.init(params)
    loss = acc = float("nan")
    bar = tqdm(range(epochs), desc="train", leave=False, disable=not show)
    for e in bar:
      params, rest, opt_state, loss, acc, bad = epoch(
          params, rest, opt_state, x, y, labelled, jax.random.fold_in(key, e))
      if bool(bad):
        raise FloatingPointError(
            f"Training loss became non-finite in epoch {e} (last mean loss {float(loss)}); "
            f"lower train.learning_rate={cfg.learning_rate} or set train.grad_clip")
      if show:
        bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{float(acc):.3f}")
    return params, rest, TrainInfo(float(loss), float(acc), epochs * steps_per_epoch, epochs)

  fit.epoch = epoch  # Exposed so tests can check it compiles once.
  return fit
