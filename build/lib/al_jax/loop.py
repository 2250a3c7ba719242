"""THE round loop: train -> evaluate -> score pool -> select -> label -> log -> checkpoint.

Round r trains on the labelled set (round 0: the initial set), evaluates on
the test set, then (for r < num_rounds) scores the whole padded pool and
labels `query_size` new examples. Keys: `fold_in(root, r)` split into named
streams, so a resumed run repeats an uninterrupted one exactly.
"""

import json
import os
import sys
import time
from typing import NamedTuple

import jax
import numpy as np
from absl import logging
from tqdm.auto import tqdm

from al_jax import checkpoint, data, evaluate, metrics, models, sharding, strategies, train
from al_jax.strategies.base import PoolView

# Fields whose change makes an existing workdir a different experiment.
_RESUME_KEYS = ("seed", "data", "model_name", "model", "strategy", "al.initial_size",
                "al.query_size", "al.initial_balanced", "al.warm_start", "train", "score")
_INITIAL_SET_SALT = 0x7FFFFFFF  # fold_in constant for the initial labelled set.


class RoundKeys(NamedTuple):
  init: jax.Array
  train: jax.Array
  score: jax.Array
  select: jax.Array
  subset: jax.Array


def round_keys(root, r: int) -> RoundKeys:
  return RoundKeys(*jax.random.split(jax.random.fold_in(root, r), len(RoundKeys._fields)))


def candidate_rows(key, labelled: np.ndarray, valid: np.ndarray, subset_size: int,
                   max_labelled: int, multiple: int):
  """Pool positions scored this round: `subset_size` random unlabelled rows plus
  every labelled row (coreset-style strategies need them as centres), padded
  to a size fixed for the whole run so nothing recompiles.

  Returns (positions [M], candidate valid mask [M]).
  """
  unl = np.flatnonzero(valid & ~labelled)
  u = np.asarray(jax.random.uniform(key, (len(valid),)))
  pick = np.sort(unl[np.argsort(u[unl], kind="stable")[:subset_size]])
  pos = np.concatenate([pick, np.flatnonzero(labelled)])
  size = -(-(subset_size + max_labelled) // multiple) * multiple
  cand_valid = np.arange(size) < len(pos)
  return np.concatenate([pos, np.zeros(size - len(pos), pos.dtype)]), cand_valid


def check_config(config) -> None:
  """Fails on values that make no sense before any data is loaded."""
  al = config.al
  if config.strategy.name not in strategies.STRATEGIES:
    raise ValueError(f"Unknown strategy '{config.strategy.name}'; "
                     f"known: {sorted(strategies.STRATEGIES)}")
  if config.model_name not in models.MODELS:
    raise ValueError(f"Unknown model '{config.model_name}'; known: {sorted(models.MODELS)}")
  if config.data.name not in data.known_datasets():
    raise ValueError(f"Unknown dataset '{config.data.name}'; known: {data.known_datasets()}")
  for name in ("initial_size", "query_size"):
    if int(al[name]) < 1:
      raise ValueError(f"al.{name} must be >= 1, got {al[name]}")
  if int(al.num_rounds) < 0:
    raise ValueError(f"al.num_rounds must be >= 0, got {al.num_rounds}")
  subset = int(al.get("subset_size", 0) or 0)
  if subset and subset < int(al.query_size):
    raise ValueError(f"al.subset_size ({subset}) must be 0 (score the whole pool) or "
                     f">= al.query_size ({al.query_size})")
  for name in ("batch_size", "num_epochs"):
    if int(config.train[name]) < 1:
      raise ValueError(f"train.{name} must be >= 1, got {config.train[name]}")
  train.make_optimizer(config.train)  # Raises on an unknown optimizer.
  augment = config.data.get("augment", "none")
  if augment not in train.AUGMENTATIONS:
    raise ValueError(f"Unknown data.augment '{augment}'; known: {list(train.AUGMENTATIONS)}")


def check_budget(config, pool_size: int) -> None:
  al = config.al
  need = int(al.initial_size) + int(al.num_rounds) * int(al.query_size)
  if need > pool_size:
    raise ValueError(
        f"al.initial_size ({al.initial_size}) + al.num_rounds ({al.num_rounds}) x "
        f"al.query_size ({al.query_size}) = {need} exceeds the pool of {pool_size} examples")


def initial_labelled(key, y: np.ndarray, valid: np.ndarray, size: int, balanced: bool):
  """The initial labelled mask: uniform, or equal counts per class (Gal et al.)."""
  order = np.asarray(jax.random.permutation(key, len(y)))
  order = order[valid[order]]
  if balanced:
    classes = np.unique(y[valid])
    per = [order[y[order] == c] for c in classes]
    # Round-robin over classes in the shuffled order.
    picks = [p[i] for i in range(max(map(len, per))) for p in per if i < len(p)]
    order = np.asarray(picks)
  mask = np.zeros(len(y), bool)
  mask[order[:size]] = True
  return mask


def _flat(config) -> dict:
  return _flat_dict(json.loads(config.to_json_best_effort()))


def _check_resume(workdir: str, config) -> None:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = _flat_dict(json.load(f))
  new = _flat(config)
  diff = sorted(k for k in set(old) | set(new)
                if old.get(k) != new.get(k) and k.startswith(_RESUME_KEYS))
  if diff:
    raise ValueError(f"workdir {workdir} holds a run with a different config "
                     f"({', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in diff)}); "
                     f"use a new --workdir")


def _flat_dict(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat_dict(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def setup(config):
  """Everything that can fail on bad input, done before touching the workdir."""
  check_config(config)
  mesh = sharding.make_mesh(config.mesh)
  ds = data.load(config.data, int(config.seed))
  shards = sharding.num_data_shards(mesh)
  if int(config.train.batch_size) % shards:
    raise ValueError(f"train.batch_size={config.train.batch_size} must be a multiple of "
                     f"the {shards} data shards")
  # Score batch: a multiple of the shards, no bigger than the padded pool.
  rows_per_shard = -(-len(ds.x_train) // shards)
  score_bs = min(int(config.score.batch_size), rows_per_shard * shards)
  score_bs = -(-score_bs // shards) * shards
  pool = data.make_pool(ds.x_train, ds.y_train, score_bs)
  check_budget(config, pool.size)
  fns = models.build(config.model_name, ds.x_train.shape[1:], ds.num_classes,
                     **config.model.to_dict())
  strategy = strategies.get(config.strategy.name, fns, **config.strategy.kw.to_dict())
  return mesh, ds, pool, score_bs, fns, strategy


def run(config, workdir: str) -> dict:
  """Runs the whole experiment; returns the summary (also in summary.json)."""
  mesh, ds, pool, score_bs, fns, strategy = setup(config)
  writer = metrics.is_writer()
  if os.path.isdir(workdir):
    _check_resume(workdir, config)
  if writer:
    os.makedirs(workdir, exist_ok=True)
    metrics.write_json(os.path.join(workdir, "config.json"),
                       json.loads(config.to_json_best_effort()))
  al = config.al
  num_rounds, budget = int(al.num_rounds), int(al.query_size)
  ckpt = checkpoint.Checkpointer(workdir, int(config.ckpt.get("max_to_keep", 2)))

  # Device-resident, sharded pool and test set.
  x_pool = sharding.shard_rows(mesh, pool.x)
  y_pool = sharding.shard_rows(mesh, pool.y)
  eval_bs = -(-min(int(config.eval.batch_size), len(ds.x_test)) // sharding.num_data_shards(mesh))
  eval_bs *= sharding.num_data_shards(mesh)
  x_test_np, test_valid = data.pad_rows(ds.x_test, eval_bs)
  y_test_np, _ = data.pad_rows(ds.y_test, eval_bs)
  x_test, y_test, test_valid = (sharding.shard_rows(mesh, a) for a in (x_test_np, y_test_np, test_valid))

  fit = train.make_fit(fns, config.train, mesh, config.data.get("augment", "none"),
                       strategy.extension)
  # Strategies with a training extension also see its final state.
  ext_kw = (lambda ext: {"ext": ext}) if strategy.extension is not None else (lambda ext: {})
  evaluate_fn = evaluate.make_evaluate(fns, eval_bs, mesh)
  init_fn = models.jit_init(fns, out_shardings=sharding.replicated(mesh))

  @jax.jit
  def score_pool(params, rest, x, key, ext):
    return sharding.map_batches(
        lambda xb: strategy.score(params, rest, {"x": xb}, key, **ext_kw(ext)), x, score_bs, mesh)

  def select_ext(features, view, budget_, key, ext):
    return strategy.select(features, view, budget_, key, **ext_kw(ext))

  select_fn = jax.jit(select_ext, static_argnums=2) if strategy.jit_select else select_ext

  root = jax.random.key(int(config.seed))
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  selected_path = os.path.join(workdir, "selected.jsonl")
  warm = bool(al.warm_start)
  subset = int(al.get("subset_size", 0) or 0)
  max_labelled = int(al.initial_size) + num_rounds * budget
  params = rest = None

  last = ckpt.latest_round()
  if last is None:
    start = 0
    labelled = initial_labelled(jax.random.fold_in(root, _INITIAL_SET_SALT), pool.y,
                                pool.valid, int(al.initial_size),
                                bool(al.get("initial_balanced", False)))
    history = []
  else:
    like = init_fn(round_keys(root, 0).init) if warm else None
    labelled, meta, restored = ckpt.restore(last, len(pool.y), like)
    if warm:
      params, rest = restored
    start = last + 1
    logging.info("Resuming %s after round %d (%d labelled)", workdir, last, labelled.sum())
    history = [m for m in metrics.read_jsonl(metrics_path) if m["round"] < start]
  if writer:  # Drop records of a round that was logged but not checkpointed.
    metrics.write_jsonl(metrics_path, history)
    kept = [s for s in metrics.read_jsonl(selected_path) if s["round"] < start]
    if start == 0:  # A fresh start: round -1 records the initial labelled set.
      kept = [initial_record(labelled, pool.ids)]
    metrics.write_jsonl(selected_path, kept)

  progress = config.get("progress", True)
  bars = writer and progress and _is_terminal()
  # A redirected log gets one line per round instead of bars.
  log_rounds = writer and progress and not bars
  bar = tqdm(range(start, num_rounds + 1), desc=f"AL {config.strategy.name}",
             disable=not bars, initial=start, total=num_rounds + 1)
  for r in bar:
    keys = round_keys(root, r)
    if not warm or params is None:
      params, rest = init_fn(keys.init)
    t0 = time.perf_counter()
    lab_dev = sharding.shard_rows(mesh, labelled)
    params, rest, ext, info = fit(params, rest, x_pool, y_pool, lab_dev, keys.train,
                                  show=bars)
    jax.block_until_ready(params)
    t_train = time.perf_counter() - t0
    m = {k: float(v) for k, v in evaluate_fn(params, rest, x_test, y_test, test_valid).items()}
    record = {"round": r, "num_labelled": int(labelled.sum()), **m,
              "train_loss": info.loss, "train_accuracy": info.accuracy,
              "train_steps": info.steps, "time_train": t_train,
              "time_score": 0.0, "time_select": 0.0}
    if r < num_rounds:
      t0 = time.perf_counter()
      if subset:
        pos, cand_valid = candidate_rows(keys.subset, labelled, pool.valid, subset,
                                         max_labelled, score_bs)
        x_cand = sharding.shard_rows(mesh, pool.x[pos])
      else:
        pos, cand_valid, x_cand = np.arange(len(pool.y)), pool.valid, x_pool
      feats = jax.block_until_ready(score_pool(params, rest, x_cand, keys.score, ext))
      record["time_score"] = time.perf_counter() - t0
      t0 = time.perf_counter()
      cand_lab = labelled[pos] & cand_valid
      view = PoolView(*(sharding.shard_rows(mesh, a) for a in (
          np.where(cand_valid, pool.ids[pos], -1).astype(np.int32), cand_valid, cand_lab,
          np.where(cand_lab, pool.y[pos], -1).astype(np.int32))))
      new_ids, scores = select_fn(feats, view, budget, keys.select, ext)
      new_ids, scores = sharding.to_host(new_ids), sharding.to_host(scores)
      record["time_select"] = time.perf_counter() - t0
      _check_selection(new_ids, labelled, pool.valid, budget, config.strategy.name)
      labelled = labelled.copy()
      labelled[new_ids] = True
      if writer:
        metrics.append_jsonl(selected_path, {"round": r, "ids": new_ids.tolist(),
                                             "scores": [float(s) for s in scores]})
    history.append(record)
    if writer:
      metrics.append_jsonl(metrics_path, record)
    ckpt.save(r, labelled, {"round": r}, (params, rest) if warm else None)
    bar.set_postfix(acc=f"{m['accuracy']:.3f}", n=record["num_labelled"])
    if log_rounds:
      print(f"{config.strategy.name} round {r}/{num_rounds}: {record['num_labelled']} labelled, "
            f"accuracy {m['accuracy']:.4f}, train {record['time_train']:.1f} s, "
            f"score {record['time_score']:.1f} s, select {record['time_select']:.1f} s",
            file=sys.stderr, flush=True)
  ckpt.close()
  return _finish(workdir, config, history, writer)


def initial_record(labelled: np.ndarray, ids: np.ndarray) -> dict:
  """selected.jsonl's first line: the initial labelled set as round -1."""
  return {"round": -1, "initial": True, "ids": ids[labelled].astype(int).tolist(), "scores": []}


def _is_terminal() -> bool:
  """Bars only on a terminal: redirected to a file, tqdm writes a line per refresh."""
  try:
    return sys.stderr.isatty()
  except (AttributeError, ValueError):  # Replaced or closed stderr.
    return False


def _check_selection(ids, labelled, valid, budget, name):
  """A strategy bug must stop the run, not corrupt the labelled set."""
  problems = []
  if len(ids) != budget:
    problems.append(f"{len(ids)} ids for a budget of {budget}")
  if len(np.unique(ids)) != len(ids):
    problems.append("duplicate ids")
  bad = ids[(ids < 0) | (ids >= len(valid))]
  if len(bad):
    problems.append(f"out-of-range ids {bad[:5].tolist()}")
  else:
    if (~valid[ids]).any():
      problems.append("padding rows")
    if labelled[ids].any():
      problems.append(f"already labelled ids {ids[labelled[ids]][:5].tolist()}")
  if problems:
    raise RuntimeError(f"Strategy '{name}' returned an invalid selection: {'; '.join(problems)}")


def _finish(workdir, config, history, writer) -> dict:
  n = [h["num_labelled"] for h in history]
  acc = [h["accuracy"] for h in history]
  summary = {"strategy": config.strategy.name, "seed": int(config.seed),
             "dataset": config.data.name, "aubc": metrics.aubc(n, acc),
             "final_accuracy": acc[-1], "num_labelled": n[-1], "rounds": len(history)}
  if writer:
    metrics.write_json(os.path.join(workdir, "summary.json"), summary)
    metrics.plot_curves(os.path.join(workdir, "learning_curve.png"),
                        {f"{summary['strategy']} (AUBC {summary['aubc']:.3f})": (n, acc)},
                        title=f"{config.data.name}, seed {config.seed}")
    print(f"AUBC {summary['strategy']}: {summary['aubc']:.4f} "
          f"(final accuracy {acc[-1]:.4f} with {n[-1]} labels)")
  return summary
