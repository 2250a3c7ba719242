"""Training on the labelled set with fixed-shape minibatches.

Each epoch is one jitted call: a random permutation that puts the labelled
rows first, then a `fori_loop` over ceil(n_labelled / B) steps of B rows;
the wrap-around rows of the last batch get weight 0. Shapes never depend on
how many rows are labelled, so nothing recompiles between rounds.
"""

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from al_jax import schedules, sharding
# Re-exported: TrainExtension lives beside Strategy (strategies/base.py).
from al_jax.strategies.base import TrainExtension  # pylint: disable=unused-import


class TrainInfo(NamedTuple):
  loss: float
  accuracy: float  # on the training batches (dropout on)
  steps: int
  epochs: int


def make_optimizer(cfg) -> optax.GradientTransformation:
  """optax optimiser from config.train (optimizer, learning_rate and their keywords).

  With a schedule other than a constant rate (cfg.schedule, al_jax/schedules.py)
  the optimiser is `schedules.scheduled`: its state holds the rate and the
  round's length, which every epoch sets (`schedules.set_round`); without
  one the rate is a constant of the optimiser, as it always was. Strategies
  build their auxiliary optimisers with this function too.
  """
  name = cfg.optimizer
  if name not in OPTIMIZERS:
    raise ValueError(f"Unknown train.optimizer '{name}'; known: {list(OPTIMIZERS)}")

  def build(learning_rate):
    parts = []
    if cfg.get("grad_clip"):
      parts.append(optax.clip(cfg.grad_clip))  # BADGE clamps gradients to 0.1.
    if name != "adamw" and cfg.get("weight_decay", 0.0):
      parts.append(optax.add_decayed_weights(cfg.weight_decay))
    return optax.chain(*parts, OPTIMIZERS[name](learning_rate, cfg))

  lr_at = schedules.make(cfg.get("schedule"), float(cfg.learning_rate))
  return build(cfg.learning_rate) if lr_at is None else schedules.scheduled(build, lr_at)


# name -> (learning_rate, config.train) -> the optax optimiser.
OPTIMIZERS = {
    "adam": lambda lr, cfg: optax.adam(lr),
    "adamw": lambda lr, cfg: optax.adamw(lr, weight_decay=cfg.get("weight_decay", 0.0)),
    "sgd": lambda lr, cfg: optax.sgd(lr, momentum=cfg.get("momentum", 0.0) or None,
                                     nesterov=cfg.get("nesterov", False)),
}


AUGMENTATIONS = ("none", "flip", "flip_crop")


def augment(x: jax.Array, key, kind: str) -> jax.Array:
  """Per-example train-time augmentation: one of AUGMENTATIONS."""
  if kind not in AUGMENTATIONS:
    raise ValueError(f"Unknown data.augment '{kind}'; known: {list(AUGMENTATIONS)}")
  if kind == "none":
    return x
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


def make_fit(fns, cfg, mesh, augment_kind: str = "none", extension: TrainExtension | None = None,
             preprocess: Callable | None = None, seeds=None):
  """Returns fit(params, rest, x, y, labelled, key, show=False, validation=None)
  -> (params, rest, ext, TrainInfo).

  x, y: the whole padded pool (device arrays); labelled: [N_pad] bool, the
  rows trained on. validation: optional [N_pad] bool of held-out labelled
  rows, never trained on; `after_fit` finds it in ext["validation"].
  preprocess: x -> float input, applied inside the jitted epoch to each
  gathered batch (a uint8 pool's `data.normalizer`); None: x is used as is.
  `ext` is the extension's final state (None without an extension).
  cfg.unroll_steps (default False): unroll the steps of an epoch with a step
  count fixed per call (recompiles whenever ceil(n_labelled / B) changes).
  On CPU, XLA runs convolution gradients inside a while loop about 10x
  slower than outside one (measured with the Gal et al. CNN: 2.7 s vs 0.23 s
  per 128-row step), so small-label CNN runs on CPU want this on.
  seeds: a `seeds.SeedAxis` of several runs: params, rest, x, y, labelled,
  key and validation then carry a leading seed axis, every jitted step is
  lifted over it, the divergence guard checks each seed (its error names
  the seed), and fit returns a list of TrainInfo, one per seed. Every seed
  must have as many labelled rows (the step count is shared).
  """
  tx = make_optimizer(cfg)
  unroll = bool(cfg.get("unroll_steps", False))
  bsz = int(cfg.batch_size)
  batch_sharding = NamedSharding(mesh, P(sharding.DATA_AXIS))
  ext_def = extension or TrainExtension(init=lambda *a: {})
  prep = preprocess or (lambda a: a)

  def ce_loss(params, rest, ext, batch, key, epoch):
    del ext, epoch
    (logits, _), new_rest = fns.apply_train(params, rest, batch["x"], key)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
    return weighted_mean(nll, batch["w"]), (new_rest, logits)

  loss_impl = ext_def.loss or ce_loss

  def loss_fn(params, ext_params, rest, ext, batch, key, epoch):
    if ext_params is not None:
      ext = {**ext, "params": ext_params}
    return loss_impl(params, rest, ext, batch, key, epoch)

  @functools.partial(jax.jit, static_argnames="num_steps")
  def epoch_fn(params, rest, opt_state, ext, x, y, labelled, key, epoch, total_steps,
               num_steps=None):
    k_perm, k_steps = jax.random.split(key)
    n_lab = jnp.sum(labelled)
    # Labelled rows first, in random order.
    order = jnp.argsort(jnp.where(labelled, jax.random.uniform(k_perm, labelled.shape), 2.0))
    unl_p = (~labelled).astype(jnp.float32)  # padding rows are never sampled: see below
    n_rows = jnp.maximum(n_lab, jnp.sum(unl_p * (y >= 0))) if ext_def.long_epoch else n_lab
    steps = (n_rows.astype(jnp.int32) + bsz - 1) // bsz
    # Scheduled optimisers (the model's, a strategy's auxiliary ones) learn the
    # round's length here, traced: no recompile per round.
    opt_state, ext = schedules.set_round((opt_state, ext), total_steps, steps)

    def step(s, carry):
      params, rest, opt_state, ext, loss_sum, correct, seen, bad, first = carry
      j = s * bsz + jnp.arange(bsz)
      idx = order[j % n_lab]
      k = jax.random.fold_in(k_steps, s)
      k_aug, k_drop, k_unl, k_ext = jax.random.split(k, 4)
      batch = {"x": jax.lax.with_sharding_constraint(
                   augment(prep(x[idx]), k_aug, augment_kind), batch_sharding),
               "y": y[idx], "w": (j < n_rows).astype(jnp.float32)}
      if ext_def.needs_unlabelled:
        p = unl_p * (y >= 0)  # y = -1 marks padding rows.
        idx_u = jax.random.choice(k_unl, y.shape[0], (bsz,), p=p / jnp.maximum(p.sum(), 1.0))
        batch["x_u"] = jax.lax.with_sharding_constraint(
            augment(prep(x[idx_u]), jax.random.fold_in(k_aug, 1), augment_kind), batch_sharding)
      ext_params = ext.get("params")
      (loss, (rest, logits, *side)), (g, g_ext) = jax.value_and_grad(
          loss_fn, argnums=(0, 1), has_aux=True)(
              params, ext_params, rest, ext, batch, k_drop, epoch)
      updates, opt_state = tx.update(g, opt_state, params)
      params = optax.apply_updates(params, updates)
      if ext_params is not None:
        ext_updates, ext_opt = ext_def.tx.update(g_ext, ext["opt"], ext_params)
        ext = {**ext, "params": optax.apply_updates(ext_params, ext_updates), "opt": ext_opt}
      if ext_def.after_step is not None:
        # What the loss's forward pass computed for it (e.g. WAAL's train-mode
        # embeddings) joins the batch: no second forward pass.
        ext = ext_def.after_step(params, rest, ext, {**batch, **(side[0] if side else {})},
                                 k_ext, epoch)
      c = jnp.sum((jnp.argmax(logits, -1) == batch["y"]) * batch["w"])
      bad = bad | ~jnp.isfinite(loss)
      first = jnp.where(s == 0, loss, first)  # the divergence guard's reference
      w = batch["w"].sum()
      return params, rest, opt_state, ext, loss_sum + loss * w, correct + c, seen + w, bad, first

    zero = jnp.zeros((), jnp.float32)
    carry = (params, rest, opt_state, ext, zero, zero, zero, jnp.zeros((), bool), zero)
    if num_steps is None:
      out = jax.lax.fori_loop(0, steps, step, carry)
    else:  # Static count == steps (the caller computed it): no while loop.
      out = jax.lax.fori_loop(0, num_steps, step, carry, unroll=True)
    params, rest, opt_state, ext, loss_sum, correct, seen, bad, first = out
    if ext_def.after_epoch is not None:
      # Hooks see the whole pool: with a uint8 pool this is its one float copy.
      ext = ext_def.after_epoch(params, rest, ext, prep(x), revealed(y, labelled), labelled,
                                epoch)
    return params, rest, opt_state, ext, loss_sum / seen, correct / seen, bad, first

  if seeds is None:  # One run: no seed axis; lifting is the identity.
    from al_jax.seeds import SeedAxis  # pylint: disable=import-outside-toplevel
    seeds = SeedAxis(0, 1, mesh)
  per_seed = (0,) * 8
  # One lifted epoch per static step count (None: the traced fori_loop).
  lifted_epochs = {}

  def lifted_epoch(num_steps):
    if not seeds.stacked:
      return functools.partial(epoch_fn, num_steps=num_steps)
    if num_steps not in lifted_epochs:
      lifted_epochs[num_steps] = jax.jit(seeds.lift(
          functools.partial(epoch_fn, num_steps=num_steps), per_seed + (None, None)))
    return lifted_epochs[num_steps]

  after_fit = None
  if ext_def.after_fit is not None:
    after_fit = jax.jit(seeds.lift(lambda params, rest, ext, x, y, labelled: ext_def.after_fit(
        params, rest, ext, prep(x), y, labelled), (0,) * 6))
  lift = lambda f, n: jax.jit(seeds.lift(f, (0,) * n)) if seeds.stacked else f
  init_opt = lift(tx.init, 1)
  split = lift(jax.random.split, 1)
  fold_in = jax.jit(seeds.lift(jax.random.fold_in, (0, None))) if seeds.stacked else (
      jax.random.fold_in)
  init_ext_opt = lift(ext_def.tx.init, 1) if ext_def.tx is not None else None
  init_ext = lift(ext_def.init, 4)  # (key, params, rest, the pool's x), built once

  def fit(params, rest, x, y, labelled, key, show: bool = False, validation=None,
          ext_params=None):
    """ext_params: the extension's "params" to start from (warm start), else fresh."""
    # Per seed (works on a global multi-host array too).
    counts = np.atleast_1d(np.asarray(jnp.sum(labelled, axis=-1)))
    if len(set(counts.tolist())) > 1:
      raise ValueError(f"the seeds hold different numbers of labelled rows {counts.tolist()}")
    n_lab = int(counts[0])
    if n_lab == 0:
      raise ValueError("Cannot train on an empty labelled set")
    n_rows = n_lab
    if ext_def.long_epoch:
      n_rows = max(n_lab, int(jnp.max(jnp.sum(~labelled & (y >= 0), axis=-1))))
    steps_per_epoch = math.ceil(n_rows / bsz)
    epochs = max(int(cfg.num_epochs), math.ceil(cfg.get("min_steps", 0) / steps_per_epoch))
    opt_state = init_opt(params)
    k_ext, key = _split2(split(key), seeds)
    ext = init_ext(k_ext, params, rest, x)
    if ext_params is not None and "params" in ext:
      # Warm start (LL4AL's reference keeps its loss module across cycles);
      # the optimiser state starts afresh, as the reference rebuilds it.
      ext = {k: v for k, v in ext.items() if k != "opt"}
      ext["params"] = ext_params
    if "params" in ext and "opt" not in ext:
      ext = {**ext, "opt": init_ext_opt(ext["params"])}
    # Same input shardings for every call (fresh inits come uncommitted), so
    # the epoch compiles once for the whole run.
    params, rest, opt_state, ext = seeds.put_state((params, rest, opt_state, ext))
    loss = acc = float("nan")
    guards = [DivergenceGuard(cfg, label=seeds.label(s)) for s in range(seeds.size)]
    epoch_call = lifted_epoch(steps_per_epoch if unroll else None)
    # Counts epochs whose results are in (see _check_epoch), so the counter
    # never runs ahead of training.
    bar = tqdm(total=epochs, desc="train", leave=False, disable=not show)
    # Epoch e's flags are read on the host only after epoch e + 1 is queued:
    # reading them at once would idle an accelerator between epochs.
    pending = None
    for e in range(epochs):
      params, rest, opt_state, ext, loss, acc, bad, first = epoch_call(
          params, rest, opt_state, ext, x, y, labelled, fold_in(key, e),
          jax.device_put(jnp.asarray(e, jnp.int32), sharding.replicated(mesh)),
          jax.device_put(jnp.asarray(epochs * steps_per_epoch, jnp.int32),
                         sharding.replicated(mesh)))
      if pending is not None:
        _check_epoch(guards, epochs, *pending, bar if show else None)
      pending = (e, loss, acc, bad, first)
    if pending is not None:
      _check_epoch(guards, epochs, *pending, bar if show else None)
    bar.close()
    if ext_def.after_fit is not None:
      if validation is not None:  # Held-out labelled rows (al.validation_size), e.g. ISAL's v.
        ext = {**ext, "validation": validation}
      # Labels of training and held-out labelled rows only; -1 elsewhere.
      seen = labelled if validation is None else labelled | validation
      ext = after_fit(params, rest, ext, x, revealed(y, seen), labelled)
    losses, accs = (np.atleast_1d(np.asarray(jax.device_get(v), np.float64))
                    for v in (loss, acc))
    infos = [TrainInfo(float(l), float(a), epochs * steps_per_epoch, epochs)
             for l, a in zip(losses, accs)]
    return (params, rest, (ext if extension is not None else None),
            infos if seeds.stacked else infos[0])

  fit.epoch = epoch_fn  # Exposed so tests can check it compiles once.
  return fit


class DivergenceGuard:
  """Stops training that diverged, whatever the optimiser.

  The rule, checked after every epoch: training stops with a
  FloatingPointError when any step's loss is non-finite, or when the epoch's
  mean loss exceeds `factor` x L0 + 1 for `patience` consecutive epochs (or
  for every epoch after the first when there are fewer), where L0 is the
  loss of the very first batch, before any update, and `factor` is
  train.divergence_factor (default 10). Healthy training stays below L0, so
  this fires only on losses that blew up (e.g. Adam at a huge learning rate
  stays finite but ends at chance level).
  """

  def __init__(self, cfg, patience: int = 3, label: str = ""):
    self.cfg = cfg
    self.label = label  # ' (seed N)' when several seeds train together
    self.factor = float(cfg.get("divergence_factor", 10.0))
    self.patience = patience
    self.ref = None
    self.above = 0

  def _hint(self) -> str:
    return (f"at train.learning_rate={self.cfg.learning_rate} "
            f"(train.optimizer={self.cfg.optimizer}); lower the learning rate or set "
            f"train.grad_clip")

  def check(self, epoch: int, epochs: int, loss: float, bad: float, first: float) -> None:
    if bad or not math.isfinite(loss):
      raise FloatingPointError(
          f"Training loss became non-finite in epoch {epoch}{self.label} (last mean loss {loss}) "
          f"{self._hint()}")
    if self.ref is None:
      self.ref = first
      return
    limit = self.factor * abs(self.ref) + 1.0
    self.above = self.above + 1 if loss > limit else 0
    if self.above >= min(self.patience, epochs - 1):
      raise FloatingPointError(
          f"Training diverged in epoch {epoch}{self.label}: mean loss {loss:.4g} stayed above "
          f"{limit:.4g} ({self.factor:g} x the first batch's loss {self.ref:.4g} + 1) for "
          f"{self.above} epochs {self._hint()}")


def _check_epoch(guards, epochs, e, loss, acc, bad, first, bar) -> None:
  """The divergence guards (one per seed) on epoch e's flags: one host sync
  per epoch, never per step."""
  loss, acc, bad, first = (np.atleast_1d(np.asarray(v, np.float64))
                           for v in jax.device_get((loss, acc, bad, first)))
  for s, guard in enumerate(guards):
    guard.check(e, epochs, float(loss[s]), float(bad[s]), float(first[s]))
  if bar is not None:
    bar.set_postfix(loss=f"{loss.mean():.3f}", acc=f"{acc.mean():.3f}", refresh=False)
    bar.update(1)


def _split2(keys, seeds):
  """(k_ext, key) from split keys: [2] for one run, [S, 2] stacked."""
  return (keys[:, 0], keys[:, 1]) if seeds.stacked else (keys[0], keys[1])


def revealed(y: jax.Array, labelled: jax.Array) -> jax.Array:
  """The labels a strategy may see: y on labelled rows, -1 elsewhere."""
  return jnp.where(labelled, y, -1)


def weighted_mean(values: jax.Array, w: jax.Array) -> jax.Array:
  """sum(values * w) / max(sum(w), 1): the batch mean over real rows."""
  return jnp.sum(values * w) / jnp.maximum(jnp.sum(w), 1.0)
