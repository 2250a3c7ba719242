"""Data pruning with data-diet and forgetting scores (true labels).

  python -m al_jax.prune --config configs/digits.py:el2n --fraction 0.5 --method el2n
  python -m al_jax.prune --config configs/digits.py:grand --fraction 0.3 --method grand \
      --num_seeds 4 --score_epochs 0

The whole training pool is the labelled set. Each row is scored with its true
label, averaged over `num_seeds` independent runs:
  el2n / grand: ||softmax - onehot(y)|| / ||grad_theta CE|| after
                `score_epochs` epochs of training (0 = at initialisation);
  forgetting:   forgetting events over a full training run (config.train);
the `fraction` of rows with the LOWEST scores (the easiest) is dropped, as in
Paul et al. 2021 and Toneva et al. 2019, a fresh model is trained on the rest
and evaluated on the test set, next to the same-size random subset and the
full pool.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from al_jax import data, evaluate, loop, models, sharding, train
from al_jax.strategies import data_diet, forgetting

METHODS = ("el2n", "grand", "forgetting")
_SEED_SALT = 0x5EED  # fold_in constant: scoring runs use other keys than the retraining


def _train_cfg(cfg, epochs: int | None = None):
  cfg = cfg.copy_and_resolve_references()
  if epochs is not None:
    cfg.num_epochs, cfg.min_steps = epochs, 0
  return cfg


def score_rows(config, method: str, num_seeds: int, score_epochs: int, mesh, pool, score_bs,
               fns, path: str = "taps") -> np.ndarray:
  """[N_pad] scores (true labels), mean over seeds; padding rows get -inf.

  GraNd takes its full-network per-example gradient norms from the layer taps
  (one forward and one backward pass per score batch); path="vmap" is the
  vmap(grad) reference the tests compare it with."""
  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  full = sharding.shard_rows(mesh, pool.valid)
  root = jax.random.fold_in(jax.random.key(int(config.seed)), _SEED_SALT)
  aug = config.data.get("augment", "none")
  if method == "forgetting":
    fit = train.make_fit(fns, config.train, mesh, aug, forgetting.extension(fns))
  else:
    fit = train.make_fit(fns, _train_cfg(config.train, max(score_epochs, 1)), mesh, aug)
    per_row = {"el2n": lambda p, r, xb, yb: data_diet.el2n_scores(fns, p, r, xb, yb),
               "grand": lambda p, r, xb, yb: data_diet.grand_scores(fns, p, r, xb, yb,
                                                                    path=path)}[method]
    score_pool = jax.jit(lambda p, r, x, y: sharding.chunked_map(
        lambda b: per_row(p, r, b[0], jnp.maximum(b[1], 0)), (x, y), score_bs, mesh))
  init = models.jit_init(fns)
  total = np.zeros(len(pool.y))
  for s in range(num_seeds):
    k_init, k_train = jax.random.split(jax.random.fold_in(root, s))
    params, rest = init(k_init)
    if method == "forgetting":
      _, _, ext, _ = fit(params, rest, x, y, full, k_train)
      total += sharding.to_host(forgetting.forgetting_scores(ext))
      continue
    if score_epochs > 0:
      params, rest, _, _ = fit(params, rest, x, y, full, k_train)
    total += sharding.to_host(score_pool(params, rest, x, y))
  return np.where(pool.valid, total / num_seeds, -np.inf)


def run(config, fraction: float, method: str = "el2n", num_seeds: int = 2,
        score_epochs: int = 1) -> dict:
  """Scores, prunes `fraction` of the pool, retrains; returns the accuracies."""
  if method not in METHODS:
    raise ValueError(f"Unknown prune method '{method}'; known: {list(METHODS)}")
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"fraction must be in [0, 1), got {fraction}")
  if num_seeds < 1 or score_epochs < 0:
    raise ValueError(f"need num_seeds >= 1 and score_epochs >= 0, got {num_seeds}, "
                     f"{score_epochs}")
  mesh, ds, pool, score_bs, fns, _ = loop.setup(config)
  scores = score_rows(config, method, num_seeds, score_epochs, mesh, pool, score_bs, fns)
  n_valid = int(pool.valid.sum())
  n_keep = max(round((1.0 - fraction) * n_valid), 1)
  keep = np.zeros(len(pool.y), bool)
  keep[np.argsort(-scores, kind="stable")[:n_keep]] = True  # drop the lowest scores
  rng = np.random.default_rng(int(config.seed))
  keep_random = np.zeros(len(pool.y), bool)
  keep_random[rng.choice(np.flatnonzero(pool.valid), n_keep, replace=False)] = True

  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  eval_bs = -(-min(int(config.eval.batch_size), len(ds.x_test)) // sharding.num_data_shards(mesh))
  eval_bs *= sharding.num_data_shards(mesh)
  x_test, test_valid = data.pad_rows(ds.x_test, eval_bs)
  y_test, _ = data.pad_rows(ds.y_test, eval_bs)
  x_test, y_test, test_valid = (sharding.shard_rows(mesh, a) for a in (x_test, y_test, test_valid))
  fit = train.make_fit(fns, config.train, mesh, config.data.get("augment", "none"))
  evaluate_fn = evaluate.make_evaluate(fns, eval_bs, mesh)
  root = jax.random.key(int(config.seed))
  init = models.jit_init(fns)

  def accuracy(mask):
    k_init, k_train = jax.random.split(root)
    params, rest = init(k_init)
    params, rest, _, _ = fit(params, rest, x, y, sharding.shard_rows(mesh, mask), k_train)
    return float(evaluate_fn(params, rest, x_test, y_test, test_valid)["accuracy"])

  return {"method": method, "fraction": fraction, "num_seeds": num_seeds,
          "score_epochs": score_epochs if method != "forgetting" else None,
          "kept": n_keep, "pool": n_valid, "accuracy": accuracy(keep),
          "random_accuracy": accuracy(keep_random), "full_accuracy": accuracy(pool.valid)}


def _define_flags():
  """Flags live here, not at import: importing this module (tests, other
  tools with their own --config) must not register absl flags twice."""
  return dict(
      config=config_flags.DEFINE_config_file("config", None, "Experiment config file."),
      fraction=flags.DEFINE_float("fraction", 0.5, "Fraction of the pool to drop."),
      method=flags.DEFINE_enum("method", "el2n", list(METHODS), "Pruning score."),
      num_seeds=flags.DEFINE_integer("num_seeds", 2, "Independent scoring runs averaged."),
      score_epochs=flags.DEFINE_integer("score_epochs", 1,
                                        "Epochs before scoring (0 = at init)."))


def main(fl):
  try:
    r = run(fl["config"].value, fl["fraction"].value, fl["method"].value,
            fl["num_seeds"].value, fl["score_epochs"].value)
  except ValueError as e:
    sys.exit(f"error: {e}")
  print(f"{r['method']}: kept {r['kept']}/{r['pool']} (dropped {r['fraction']:.0%} easiest): "
        f"accuracy {r['accuracy']:.4f}; random subset {r['random_accuracy']:.4f}; "
        f"full pool {r['full_accuracy']:.4f}")


if __name__ == "__main__":
  _flags = _define_flags()
  flags.mark_flags_as_required(["config"])
  app.run(lambda argv: main(_flags))
