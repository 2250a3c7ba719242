"""Range checks for every numeric config field, in one place.

`check(config)` runs before anything is read or written and raises a
ValueError naming the first bad field, its value and the accepted range, so
the command line prints one `error:` line. Fields a config does not have
are skipped (configs differ in their model and strategy fields).
"""

import inspect
import math

# Predicates with the phrase the error message uses.
INT_GE0 = ("an integer >= 0", lambda v: _is_int(v) and v >= 0)
INT_GE1 = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
POSITIVE = ("a number > 0", lambda v: _is_num(v) and v > 0)
NONNEG = ("a number >= 0", lambda v: _is_num(v) and v >= 0)
UNIT_OPEN = ("a fraction in (0, 1)", lambda v: _is_num(v) and 0 < v < 1)
PROB = ("a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1)
INTS_GE1 = ("an integer >= 1 or a tuple of them",
            lambda v: all(_is_int(x) and x >= 1 for x in (v if isinstance(v, (tuple, list))
                                                            else (v,))))
COUNT_OR_FRACTION = ("a count >= 1 or a fraction in (0, 1)",
                     # A count may arrive as 2000.0: the schema's field is a float (0.25).
                     lambda v: (_is_num(v) and v >= 1 and float(v).is_integer())
                     or (_is_num(v) and 0 < v < 1))


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _schedule_ok(v) -> bool:
  from al_jax import schedules  # Lazy: jax stays out of plain config checks until needed.
  if not hasattr(v, "get"):
    return False
  try:
    schedules.make(v, 1.0)
  except (ValueError, TypeError):
    return False
  return True


SCHEDULE = ("a schedule dict as train.schedule (al_jax/schedules.py: name, milestones, unit, "
            "factor, alpha, warmup)", _schedule_ok)


def optional(rule):
  """`rule`, or None (the field's 'off' value)."""
  phrase, ok = rule
  return (f"None or {phrase}", lambda v: v is None or ok(v))


# Top-level fields: dotted path -> rule.
FIELDS = {
    "seed": INT_GE0,
    "data.test_size": COUNT_OR_FRACTION,
    "data.max_train": optional(INT_GE1),
    "data.max_test": optional(INT_GE1),
    "data.num_examples": INT_GE1,
    "data.num_classes": INT_GE1,
    "al.initial_size": INT_GE1,
    "al.query_size": INT_GE1,
    "al.num_rounds": INT_GE0,
    "al.subset_size": INT_GE0,
    "al.validation_size": INT_GE0,
    "al.num_seeds": INT_GE1,
    "score.batch_size": INT_GE1,
    "score.microbatch_size": INT_GE1,
    "eval.batch_size": INT_GE1,
    "train.learning_rate": POSITIVE,
    "train.batch_size": INT_GE1,
    "train.num_epochs": INT_GE1,
    "train.min_steps": INT_GE0,
    "train.weight_decay": NONNEG,
    "train.momentum": PROB,
    "train.grad_clip": optional(POSITIVE),
    "train.divergence_factor": POSITIVE,
    "ckpt.max_to_keep": optional(INT_GE1),
}

# model.* and strategy.kw.* fields, by name (the same name means the same
# kind of value across models and strategies).
MODEL_FIELDS = {
    "hidden": INTS_GE1, "width": INT_GE1, "filters": INT_GE1, "dense": INT_GE1,
    "kernel_size": INT_GE1, "width_scale": POSITIVE,
}
KW_FIELDS = {
    **{k: INT_GE1 for k in (
        "adv_steps", "alpha_grid", "batch_size", "block", "cg_iters", "chunk", "chunk_size",
        "critic_hidden", "dense", "eval_batch", "hidden", "hvp_batch_size", "kmeans_iters",
        "knn", "loss_hidden", "margin_multiple", "max_candidates", "max_clusters",
        "max_edges", "max_iter", "microbatch_size", "min_cluster_size", "num_configs",
        "num_inits", "num_iters", "num_samples", "num_steps", "repeats", "vae_steps",
        "val_size", "z_dim")},
    **{k: INT_GE0 for k in ("num_clusters", "max_outliers", "detach_epoch")},
    **{k: POSITIVE for k in ("lr", "critic_lr", "module_lr", "scale")},
    "time_limit": optional(POSITIVE),  # coreset_mip: None = no wall-clock limit
    "node_limit": INT_GE1,
    **{k: NONNEG for k in ("adversary_weight", "ce_weight", "gp_weight", "loss_weight",
                           "recon_weight", "weight", "damping", "weight_decay")},
    "samples_per_pass": optional(INT_GE1),
    "dropout": PROB, "critic_dropout": PROB,
    "k": INT_GE1, "seed": INT_GE0, "depth": INT_GE1, "overshoot": NONNEG,
    # Auxiliary optimisers' schedules (al_jax/schedules.py), None = constant.
    **{k: optional(SCHEDULE) for k in ("schedule", "module_schedule", "critic_schedule")},
}


def _get(config, path: str):
  node = config
  for part in path.split("."):
    if part not in node:
      return False, None
    node = node[part]
  return True, node


def _fail(field: str, value, phrase: str):
  if hasattr(value, "to_dict"):  # a ConfigDict value (a schedule) on one line
    value = value.to_dict()
  raise ValueError(f"{field} must be {phrase}, got {value!r}; "
                   f"fix it in the config or with --config.{field}=VALUE")


def check(config) -> None:
  """Raises ValueError on the first field outside its range."""
  for field, (phrase, ok) in FIELDS.items():
    present, value = _get(config, field)
    if present and not ok(value):
      _fail(field, value, phrase)
  model = config.get("model") or {}
  for name in model:
    rule = PROB if name.startswith("dropout") else MODEL_FIELDS.get(name)
    if rule is not None and not rule[1](model[name]):
      _fail(f"model.{name}", model[name], rule[0])
  kw = config.strategy.get("kw") or {}
  for name in kw:
    rule = KW_FIELDS.get(name)
    if rule is not None and not rule[1](kw[name]):
      _fail(f"strategy.kw.{name}", kw[name], rule[0])
  val = _get(config, "al.validation_size")[1]
  if val and val >= config.al.initial_size:
    raise ValueError(f"al.validation_size ({val}) must be 0 (no held-out rows) or less than "
                     f"al.initial_size ({config.al.initial_size}): it is held out of the "
                     f"initial set")
  subset, query = _get(config, "al.subset_size")[1], config.al.query_size
  if subset and subset < query:
    raise ValueError(f"al.subset_size ({subset}) must be 0 (score the whole pool) or "
                     f">= al.query_size ({query})")


def check_strategy_kw(name: str, factory, kw) -> None:
  """Unknown strategy.kw names are one error naming the known ones."""
  known = [k for k in inspect.signature(factory).parameters if k != "fns"]
  unknown = sorted(set(kw) - set(known))
  if unknown:
    raise ValueError(f"strategy.kw.{unknown[0]} is not a hyperparameter of strategy "
                     f"'{name}'; known: {known}")
