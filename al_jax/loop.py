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

from al_jax import (checkpoint, data, determinism, evaluate, lock, metrics, models, precision,
                    sharding, strategies, train, validate)
from al_jax import seeds as seeds_lib
from al_jax.strategies.base import PoolView

# Fields that may change when a workdir is reused: they do not change which
# ids are selected. Every other field (subset_size included) must match.
# "environment." is recorded (versions, XLA flags), not part of the config.
_FREE_KEYS = ("progress", "al.num_rounds", "eval.", "mesh", "ckpt.", "environment.")
_INITIAL_SET_SALT = 0x7FFFFFFF  # fold_in constant for the initial labelled set.
_VALIDATION_SALT = 0x7FFFFFFE  # fold_in constant for the held-out validation rows.


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
  size = candidate_size(subset_size, max_labelled, multiple)
  cand_valid = np.arange(size) < len(pos)
  return np.concatenate([pos, np.zeros(size - len(pos), pos.dtype)]), cand_valid


def check_config(config) -> None:
  """Fails on values that make no sense before any data is loaded."""
  validate.check(config)  # Every numeric range, in one place.
  if config.strategy.name not in strategies.STRATEGIES:
    raise ValueError(f"Unknown strategy '{config.strategy.name}'; "
                     f"known: {sorted(strategies.STRATEGIES)}")
  validate.check_strategy_kw(config.strategy.name, strategies.STRATEGIES[config.strategy.name],
                             config.strategy.get("kw") or {})
  if config.model_name not in models.MODELS:
    raise ValueError(f"Unknown model '{config.model_name}'; known: {sorted(models.MODELS)}")
  if config.data.name not in data.known_datasets():
    raise ValueError(f"Unknown dataset '{config.data.name}'; known: {data.known_datasets()}")
  train.make_optimizer(config.train)  # Raises on an unknown optimizer.
  precision.check_dtype(config.train.get("compute_dtype", "float32"))
  seed_map = config.al.get("seed_map", "vmap")
  if seed_map not in seeds_lib.SEED_MAPS:
    raise ValueError(f"Unknown al.seed_map '{seed_map}'; known: {list(seeds_lib.SEED_MAPS)}")
  augment = config.data.get("augment", "none")
  if augment not in train.AUGMENTATIONS:
    raise ValueError(f"Unknown data.augment '{augment}'; known: {list(train.AUGMENTATIONS)}")


class WorkdirError(RuntimeError):
  """The workdir cannot be used or written (one `error:` line in main)."""


def check_workdir_path(workdir: str) -> None:
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"--workdir {workdir} is a file, not a directory; pass a directory "
                     f"(it is created when missing)")


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


def validation_rows(key, initial: np.ndarray, size: int) -> np.ndarray:
  """[N] bool: `size` random rows of the initial labelled set, held out of training.

  They stay labelled (never selected again) and give a per-round validation
  accuracy and held-out data to strategies (ISAL's s_test).
  """
  mask = np.zeros(len(initial), bool)
  if size:
    rows = np.flatnonzero(initial)
    u = np.asarray(jax.random.uniform(key, (len(initial),)))[rows]
    mask[rows[np.argsort(u, kind="stable")[:size]]] = True
  return mask


def _flat(config) -> dict:
  return _flat_dict(json.loads(config.to_json_best_effort()))


def candidate_size(subset_size: int, max_labelled: int, multiple: int) -> int:
  """Padded number of candidate rows scored per round in subset mode."""
  return -(-(subset_size + max_labelled) // multiple) * multiple


def _check_resume(workdir: str, config, last: int, score_bs: int) -> None:
  """Refuses to reuse a workdir holding finished rounds 0..`last` of another experiment.

  Only a workdir with at least one checkpointed round is compared: a run that
  failed before round 0 finished left nothing worth keeping.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise WorkdirError(f"workdir {workdir} holds checkpoints of rounds 0-{last} but no "
                       f"config.json to check them against; use a new --workdir")
  with open(path) as f:
    old = _flat_dict(json.load(f))
  # Workdirs written before al.num_seeds existed hold single runs.
  old.setdefault("al.num_seeds", 1)
  old.setdefault("al.seed_map", "vmap")
  new = _flat(config)
  diff = sorted(k for k in set(old) | set(new)
                if old.get(k) != new.get(k) and not k.startswith(_FREE_KEYS))
  if diff:
    raise ValueError(f"workdir {workdir} holds a run with a different config "
                     f"({', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in diff)}); "
                     f"use a new --workdir")
  n_old, n_new = int(old.get("al.num_rounds", 0)), int(config.al.num_rounds)
  if n_new < last:
    raise ValueError(f"al.num_rounds={n_new} but workdir {workdir} already holds rounds "
                     f"0-{last}; pass --config.al.num_rounds={last} or more, or use a new "
                     f"--workdir")
  subset = int(config.al.get("subset_size", 0) or 0)
  if subset and n_new != n_old:
    al = config.al
    sizes = [candidate_size(subset, int(al.initial_size) + n * int(al.query_size), score_bs)
             for n in (n_old, n_new)]
    if sizes[0] != sizes[1]:  # The padded candidate arrays, hence selections, would differ.
      raise ValueError(f"al.num_rounds {n_old} -> {n_new} with al.subset_size={subset} "
                       f"changes the padded candidate set ({sizes[0]} -> {sizes[1]} rows) "
                       f"the finished rounds selected from; rerun with "
                       f"--config.al.num_rounds={n_old} or use a new --workdir")


def _rounds_before(records: list[dict], stop: int) -> list[dict]:
  """One record per round < stop, in round order (the last copy wins)."""
  by_round = {r["round"]: r for r in records if r["round"] < stop}
  return [by_round[k] for k in sorted(by_round)]


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
  ds = data.get(**config.data, seed=int(config.seed))
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
  strategies.check_mc_dropout(config.strategy.name, config.model_name, ds.x_train.shape[1:],
                              ds.num_classes, **config.model.to_dict())
  fns = models.get(config.model_name, ds.x_train.shape[1:], ds.num_classes,
                     **config.model.to_dict())
  fns = precision.with_compute_dtype(fns, config.train.get("compute_dtype", "float32"))
  strategy = strategies.get(config.strategy.name, fns, **config.strategy.kw.to_dict())
  return mesh, ds, pool, score_bs, fns, strategy


def seed_axis(config, mesh) -> seeds_lib.SeedAxis:
  """The runs of this config: seeds seed .. seed + al.num_seeds - 1."""
  return seeds_lib.SeedAxis(int(config.seed), int(config.al.get("num_seeds", 1) or 1), mesh,
                            str(config.al.get("seed_map", "vmap")))


def seed_config(config, seed: int):
  """The config a single run of `seed` has (what each seed_<s>/config.json holds)."""
  c = config.copy_and_resolve_references()
  c.seed = int(seed)
  if "num_seeds" in c.al:
    c.al.num_seeds = 1
  return c


def load_seeds(config, seeds, ds, pool, score_bs):
  """[(Dataset, Pool)] per seed: each seed splits and subsamples the data itself."""
  runs = [(ds, pool)]
  for seed in seeds.seeds[1:]:
    d = data.get(**config.data, seed=seed)
    runs.append((d, data.make_pool(d.x_train, d.y_train, score_bs)))
  seeds_lib.check_same_shapes([p.x for _, p in runs], [d.x_test for d, _ in runs])
  if any(d.to_float is not None and not all(
      np.array_equal(a, b) for a, b in zip(d.to_float, ds.to_float)) for d, _ in runs[1:]):
    raise ValueError("al.num_seeds > 1 with data.pool_dtype='uint8' needs the same pool "
                     "statistics for every seed (this dataset's split depends on the seed); "
                     "use data.pool_dtype='float32'")
  return runs


def run_dirs(workdir: str, seeds) -> list[str]:
  """Where each seed writes what a single run writes: the workdir, or workdir/seed_<s>."""
  if not seeds.stacked:
    return [workdir]
  return [os.path.join(workdir, f"seed_{s}") for s in seeds.seeds]


def run(config, workdir: str):
  """Runs the whole experiment; returns the summary (also in summary.json).

  With al.num_seeds = S > 1, runs the S seeds as one program (al_jax/seeds.py)
  and returns the list of their summaries, each also in workdir/seed_<s>/.
  Holds the workdir lock (`lock.py`) from before the first write to the end.
  """
  check_config(config)
  determinism.check(config)
  check_workdir_path(workdir)
  writer = metrics.is_writer()
  if jax.process_count() == 1:  # (Multi-host: only the collective decision below.)
    lock.check_free(workdir)  # A busy workdir fails now, not after loading data.
  mesh, ds, pool, score_bs, fns, strategy = setup(config)
  seeds = seed_axis(config, mesh)
  runs = load_seeds(config, seeds, ds, pool, score_bs)
  dirs = run_dirs(workdir, seeds)

  def prepare():  # Process 0, under the lock, before anything else is written.
    done = checkpoint.finished_rounds(workdir)
    if done:
      _check_resume(workdir, config, done[-1], score_bs)
    env = {"environment": metrics.environment()}
    for i, d in enumerate(dirs):
      os.makedirs(d, exist_ok=True)
      # The summary and plot are rewritten at the end; until then none is better
      # than one describing another number of rounds.
      for name in ("summary.json", "learning_curve.png"):
        if os.path.exists(os.path.join(d, name)):
          os.remove(os.path.join(d, name))
      if seeds.stacked:
        metrics.write_json(os.path.join(d, "config.json"), {
            **json.loads(seed_config(config, seeds.seeds[i]).to_json_best_effort()), **env})
    metrics.write_json(os.path.join(workdir, "config.json"),
                       {**json.loads(config.to_json_best_effort()), **env})

  try:
    held = lock.acquire_all(workdir, prepare)
  except OSError as e:
    raise WorkdirError(f"cannot create or lock workdir {workdir}: {e}") from e
  try:
    summaries = _run_locked(config, workdir, dirs, mesh, seeds, runs, score_bs, fns, strategy,
                            writer)
  finally:
    held.release()
  return summaries if seeds.stacked else summaries[0]


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
  """Host arrays of each seed on a leading axis (one seed: a view, no copy)."""
  return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def _run_locked(config, workdir, dirs, mesh, seeds, runs, score_bs, fns, strategy, writer):
  al = config.al
  name = config.strategy.name
  num_rounds, budget = int(al.num_rounds), int(al.query_size)
  dss, pools = [d for d, _ in runs], [p for _, p in runs]
  pool = pools[0]  # ids and valid are row positions: the same for every seed.
  S = seeds.size
  prep = data.normalizer(dss[0]) or (lambda a: a)  # uint8 pools: normalised per batch
  keep = config.ckpt.get("max_to_keep", 2)
  ckpt = checkpoint.Checkpointer(workdir, None if keep is None else int(keep))

  # Device-resident, sharded pool and test set (a leading seed axis when S > 1).
  x_pool = seeds.rows(_stack([p.x for p in pools]))
  y_pool = seeds.rows(_stack([p.y for p in pools]))
  ids_pool = seeds.rows(_stack([pool.ids] * S))
  eval_bs = -(-min(int(config.eval.batch_size), len(dss[0].x_test))
              // sharding.num_data_shards(mesh))
  eval_bs *= sharding.num_data_shards(mesh)
  x_test = seeds.rows(_stack([data.pad_rows(d.x_test, eval_bs)[0] for d in dss]))
  y_test = seeds.rows(_stack([data.pad_rows(d.y_test, eval_bs)[0] for d in dss]))
  test_valid = seeds.rows(_stack([data.pad_rows(d.y_test, eval_bs)[1] for d in dss]))

  fit = train.make_fit(fns, config.train, mesh, config.data.get("augment", "none"),
                       strategy.extension, preprocess=prep, seeds=seeds)
  evaluate_fn = _lift_jitted(seeds, evaluate.make_evaluate(fns, eval_bs, mesh, preprocess=prep),
                             5)
  if seeds.stacked:
    init_fn = jax.jit(seeds.lift(fns.init, (0,)), out_shardings=seeds.params_sharding())
  else:
    init_fn = models.jit_init(fns, out_shardings=sharding.replicated(mesh))

  # `ext` is the extension's final state, None without an extension.
  def score_one(params, rest, x, ids, key, ext):
    # Global ids ride along: per-example MC dropout masks are keyed by them.
    return sharding.chunked_map(
        lambda b: strategy.score(params, rest, {"x": prep(b["x"]), "ids": b["ids"]}, key,
                                 ext),
        {"x": x, "ids": ids}, score_bs, mesh)

  score_pool = seeds.lift_or_loop(f"{name} scores", score_one, (0,) * 6)

  def select_one(feats, view, key, ext):
    return strategy.select(feats, view, budget, key, ext)

  if strategy.jit_select:
    select_fn = seeds.lift_or_loop(f"{name} select", select_one, (0,) * 4)
  else:  # Host code (scipy, ...): one seed after another.
    select_fn = seeds.loop(select_one, (0,) * 4)

  roots = [jax.random.key(seed) for seed in seeds.seeds]
  metrics_paths = [os.path.join(d, "metrics.jsonl") for d in dirs]
  selected_paths = [os.path.join(d, "selected.jsonl") for d in dirs]
  warm = bool(al.warm_start)
  subset = int(al.get("subset_size", 0) or 0)
  max_labelled = int(al.initial_size) + num_rounds * budget

  initial = np.stack([initial_labelled(jax.random.fold_in(root, _INITIAL_SET_SALT), p.y,
                                       p.valid, int(al.initial_size),
                                       bool(al.get("initial_balanced", False)))
                      for root, p in zip(roots, pools)])
  held_out = np.stack([validation_rows(jax.random.fold_in(root, _VALIDATION_SALT), ini,
                                       int(al.get("validation_size", 0) or 0))
                       for root, ini in zip(roots, initial)])
  held_dev = seeds.rows(held_out) if held_out.any() else None
  eval_pool = (_lift_jitted(seeds, evaluate.make_evaluate(fns, score_bs, mesh, preprocess=prep),
                            5) if held_out.any() else None)
  start, labelled, params, rest, ext = _resume_state(ckpt, config, seeds, pool, init_fn,
                                                     workdir, strategy.extension)
  if start == 0:
    labelled = initial
  histories = []
  for s in range(S):
    history = _rounds_before(metrics.read_jsonl(metrics_paths[s]), start)
    if [h["round"] for h in history] != list(range(start)):
      raise WorkdirError(f"{metrics_paths[s]} lacks records of rounds that are checkpointed "
                         f"(has {[h['round'] for h in history]}, needs 0-{start - 1}); "
                         f"the workdir was edited or damaged: use a new --workdir")
    histories.append(history)
  if writer:  # Drop records of rounds that were logged but not checkpointed (or duplicated).
    def rewrite():
      for s in range(S):
        metrics.write_jsonl(metrics_paths[s], histories[s])
        kept = _rounds_before(metrics.read_jsonl(selected_paths[s]), min(start, num_rounds))
        if start == 0:  # A fresh start: round -1 records the initial labelled set.
          kept = [initial_record(labelled[s], pool.ids)]
        metrics.write_jsonl(selected_paths[s], kept)
    _write(workdir, rewrite)

  progress = config.get("progress", True)
  bars = writer and progress and _is_terminal()
  # A redirected log gets one line per round instead of bars.
  log_rounds = writer and progress and not bars
  bar = tqdm(range(start, num_rounds + 1), desc=f"AL {name}",
             disable=not bars, initial=start, total=num_rounds + 1)
  for r in bar:
    keys = seeds.stack([round_keys(root, r) for root in roots])
    if not warm or params is None:
      params, rest = init_fn(keys.init)
    t0 = time.perf_counter()
    lab_dev = seeds.rows(labelled & ~held_out)
    # Warm start carries an extension's trained networks too (LL4AL's loss
    # module), checkpointed with the model: a resumed run continues them.
    carry = ext.get("params") if warm and isinstance(ext, dict) else None
    params, rest, ext, info = fit(params, rest, x_pool, y_pool, lab_dev, keys.train,
                                  show=bars, validation=held_dev, ext_params=carry)
    infos = info if seeds.stacked else [info]
    jax.block_until_ready(params)
    t_train = time.perf_counter() - t0
    m = {k: seeds.to_host(v) for k, v in evaluate_fn(params, rest, x_test, y_test,
                                                    test_valid).items()}
    records = [{"round": r, "num_labelled": int(labelled[s].sum()),
                **{k: float(v[s]) for k, v in m.items()},
                "train_loss": infos[s].loss, "train_accuracy": infos[s].accuracy,
                "train_steps": infos[s].steps, "time_train": t_train,
                "time_score": 0.0, "time_select": 0.0} for s in range(S)]
    if held_dev is not None:
      val = seeds.to_host(eval_pool(params, rest, x_pool, y_pool, held_dev)["accuracy"])
      for s in range(S):
        records[s]["validation_accuracy"] = float(val[s])
    sels = [None] * S
    if r < num_rounds:
      t0 = time.perf_counter()
      if subset:
        cands = [candidate_rows(seeds.take(keys.subset, s), labelled[s], pool.valid, subset,
                                max_labelled, score_bs) for s in range(S)]
        pos, cand_valid = np.stack([c[0] for c in cands]), np.stack([c[1] for c in cands])
        x_cand = seeds.rows(np.stack([p.x[i] for p, i in zip(pools, pos)]))
        ids_cand = seeds.rows(pool.ids[pos])
      else:
        pos = np.broadcast_to(np.arange(len(pool.y)), (S, len(pool.y)))
        cand_valid = np.broadcast_to(pool.valid, pos.shape)
        x_cand, ids_cand = x_pool, ids_pool
      feats = jax.block_until_ready(score_pool(params, rest, x_cand, ids_cand, keys.score, ext))
      t_score = time.perf_counter() - t0
      t0 = time.perf_counter()
      cand_lab = np.take_along_axis(labelled, pos, 1) & cand_valid
      labels = np.stack([p.y[i] for p, i in zip(pools, pos)])
      view = PoolView(*(seeds.rows(a) for a in (
          np.where(cand_valid, pool.ids[pos], -1).astype(np.int32), cand_valid, cand_lab,
          np.where(cand_lab, labels, -1).astype(np.int32))))
      with jax.set_mesh(mesh):  # lets selects shard minibatches (sharding.constrain_rows)
        new_ids, scores = select_fn(feats, view, keys.select, ext)
      new_ids, scores = seeds.to_host(new_ids), seeds.to_host(scores)
      t_select = time.perf_counter() - t0
      labelled = labelled.copy()
      for s in range(S):
        _check_selection(new_ids[s], labelled[s], pool.valid, budget, name + seeds.label(s))
        labelled[s, new_ids[s]] = True
        records[s].update(time_score=t_score, time_select=t_select)
        sels[s] = {"round": r, "ids": new_ids[s].tolist(),
                   "scores": [float(v) for v in scores[s]]}
    for s in range(S):
      histories[s].append(records[s])
    # A round is finished once its checkpoint is committed; its records are
    # written just before, and a resume drops records past the checkpoint.
    if writer:
      def append():
        for s in range(S):
          if sels[s] is not None:
            metrics.append_jsonl(selected_paths[s], sels[s])
          metrics.append_jsonl(metrics_paths[s], records[s])
      _write(workdir, append, r)
    _write(workdir, lambda: ckpt.save(r, labelled if seeds.stacked else labelled[0],
                                      {"round": r, "selected": sels[0] is not None},
                                      _warm_state(params, rest, ext) if warm else None), r)
    acc = float(np.mean([rec["accuracy"] for rec in records]))
    bar.set_postfix(acc=f"{acc:.3f}", n=records[0]["num_labelled"])
    if log_rounds:
      rec = records[0]
      mean = f" (mean of {S} seeds)" if seeds.stacked else ""
      print(f"{name} round {r}/{num_rounds}: {rec['num_labelled']} labelled, "
            f"accuracy {acc:.4f}{mean}, train {rec['time_train']:.1f} s, "
            f"score {rec['time_score']:.1f} s, select {rec['time_select']:.1f} s",
            file=sys.stderr, flush=True)
  ckpt.close()
  return [_write(workdir, lambda: _finish(d, seed_config(config, seed), h, writer))
          for d, seed, h in zip(dirs, seeds.seeds, histories)]


def _lift_jitted(seeds, fn, n: int):
  """A jitted function of n per-seed arguments, lifted over the seed axis."""
  return jax.jit(seeds.lift(fn, (0,) * n)) if seeds.stacked else fn


def _write(workdir, fn, round_=None):
  """Runs a write; a failing one (full disk, permissions) is one clear error."""
  try:
    return fn()
  except OSError as e:
    where = "" if round_ is None else f"round {round_} "
    raise WorkdirError(
        f"writing {where}into {workdir} failed ({e}); every earlier round is intact: "
        f"fix the cause (disk space, permissions) and run the same command again to "
        f"resume") from e


def _warm_state(params, rest, ext):
  """What a warm start carries to the next round: the model, plus the extension's params."""
  carry = ext.get("params") if isinstance(ext, dict) else None
  return (params, rest) if carry is None else (params, rest, carry)


def _resume_state(ckpt, config, seeds, pool, init_fn, workdir, extension=None):
  """(start round, labelled masks [S, N], params, rest, ext) from the last checkpoint.

  ext is {"params": ...} when a warm run's extension carries trained params
  (LL4AL's loss module), else None.

  A checkpoint whose round selected nothing is a finished run's last round.
  When al.num_rounds grew since, that round is redone from the state before
  it, so its skipped query is made exactly as an uninterrupted run makes it.
  """
  al = config.al
  warm = bool(al.warm_start)
  last = ckpt.latest_round()
  if last is None:
    return 0, None, None, None, None
  shape = (seeds.size, len(pool.y)) if seeds.stacked else (len(pool.y),)
  like = None
  if warm:
    keys0 = seeds.stack([round_keys(jax.random.key(s), 0) for s in seeds.seeds])
    like = init_fn(keys0.init)
    if extension is not None:  # the tree of the extension's carried params
      # Only the tree matters here: seed 0's pool stands in for every seed's.
      ext_init = seeds.lift(extension.init, (0, 0, 0, None))
      like = _warm_state(*like, ext_init(keys0.train, *like, pool.x))
  unpack = lambda t: (t[0], t[1], {"params": t[2]} if len(t) > 2 else None)
  labelled, _, restored = ckpt.restore(last, shape, like)
  labelled = labelled.reshape(seeds.size, len(pool.y))
  params, rest, ext = unpack(restored) if warm else (None, None, None)
  selected = int(labelled[0].sum()) > int(al.initial_size) + last * int(al.query_size)
  if selected or last >= int(al.num_rounds):
    logging.info("Resuming %s after round %d (%d labelled)", workdir, last, labelled[0].sum())
    return last + 1, labelled, params, rest, ext
  # Extending: redo round `last` (its labelled set is the one it trained on).
  params = rest = ext = None
  if warm and last > 0:
    if last - 1 not in ckpt.mgr.all_steps():
      raise WorkdirError(
          f"extending al.num_rounds of a warm-start run needs the checkpoint of round "
          f"{last - 1}, which is gone (ckpt.max_to_keep); use a new --workdir")
    params, rest, ext = unpack(ckpt.restore(last - 1, shape, like)[2])
  logging.info("Extending %s: redoing round %d to make its query", workdir, last)
  return last, labelled, params, rest, ext


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
             "final_accuracy": acc[-1], "num_labelled": n[-1], "rounds": len(history),
             "environment": metrics.environment()}
  if writer:
    metrics.write_json(os.path.join(workdir, "summary.json"), summary)
    metrics.plot_curves(os.path.join(workdir, "learning_curve.png"),
                        {f"{summary['strategy']} (AUBC {summary['aubc']:.3f})": (n, acc)},
                        title=f"{config.data.name}, seed {config.seed}")
    print(f"AUBC {summary['strategy']}: {summary['aubc']:.4f} "
          f"(final accuracy {acc[-1]:.4f} with {n[-1]} labels)")
  return summary
