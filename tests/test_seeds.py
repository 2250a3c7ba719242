"""al.num_seeds: S runs as one program select what S single runs select.

Each case runs seeds 0 and 1 in parallel and compares every seed's
selected.jsonl (round -1, the initial set, included) with the single run of
that seed: the same ids; scores and metrics equal up to float rounding.
Neither way of lifting is bitwise on XLA:CPU (al_jax/seeds.py): "vmap"
(batched kernels) moves parameters by ~1e-8 per epoch; "map" (lax.map over
the seeds) trains bitwise-identically in isolation, but evaluation and pool
scoring inside its loop round differently (~1e-7 relative).
"""

import importlib
import json
import os

import numpy as np
import pytest

from al_jax import loop, metrics, report
from tests.helpers import run_killed_at_check, set_fields

S = 2
# Every result field that is computed (not timed).
EXACT = ("accuracy", "nll", "ece", "train_loss", "train_accuracy", "num_labelled")


def get(spec, **over):
  name, _, arg = spec.partition(":")
  c = importlib.import_module(f"configs.{name}").get_config(",".join(filter(None, [arg, "smoke"])))
  # One query round keeps each case a few seconds; mesh: one device, like a
  # single CPU run (the 8-device test below covers the mesh).
  return set_fields(c, {"al.num_rounds": 1, "mesh": [("data", 1)], **over})


def read(workdir, name):
  return metrics.read_jsonl(os.path.join(workdir, name))


_SINGLES = {}


def single(spec, seed, tmp_path_factory, **over):
  """The single run of `seed` (cached: both seed maps compare with it)."""
  key = (spec, seed, json.dumps(over, sort_keys=True))
  if key not in _SINGLES:
    w = str(tmp_path_factory.mktemp("single"))
    loop.run(get(spec, seed=seed, **over), w)
    _SINGLES[key] = w
  return _SINGLES[key]


# One strategy per selection mechanism: uniform, top-k, k-center, k-means++
# on gradient embeddings, MC dropout, a training extension, a host-side select.
CASES = ("random", "entropy", "coreset", "badge", "bald", "forgetting", "typiclust")


@pytest.mark.parametrize("strategy,seed_map", [(s, "vmap") for s in CASES] + [("entropy", "map")])
def test_each_seed_selects_what_its_single_run_selects(strategy, seed_map, tmp_path,
                                                       tmp_path_factory):
  # configs/digits.py's own settings (dropout for bald); random and entropy
  # run configs/default.py, the digits protocol's default.
  spec, over = ("default", {"strategy.name": strategy}) if strategy in ("random", "entropy") \
      else (f"digits:{strategy}", {})
  w = str(tmp_path / "parallel")
  summaries = loop.run(get(spec, **{"al.num_seeds": S, "al.seed_map": seed_map, **over}), w)
  assert [s["seed"] for s in summaries] == [0, 1]
  for seed in range(S):
    ref = single(spec, seed, tmp_path_factory, **over)
    d = os.path.join(w, f"seed_{seed}")
    got, want = read(d, "selected.jsonl"), read(ref, "selected.jsonl")
    assert [r["ids"] for r in got] == [r["ids"] for r in want], f"seed {seed}"
    # Scores: pool scoring inside lax.map / vmap rounds differently (~1e-7).
    np.testing.assert_allclose(sum((r["scores"] for r in got), []),
                               sum((r["scores"] for r in want), []), rtol=1e-5)
    for f in ("summary.json", "learning_curve.png", "config.json"):
      assert os.path.exists(os.path.join(d, f))
    with open(os.path.join(d, "config.json")) as f:
      cfg = json.load(f)
    assert cfg["seed"] == seed and cfg["al"]["num_seeds"] == 1
    got, want = read(d, "metrics.jsonl"), read(ref, "metrics.jsonl")
    for k in EXACT:
      np.testing.assert_allclose([r[k] for r in got], [r[k] for r in want], rtol=1e-5,
                                 err_msg=f"{k} of seed {seed}")
  # The report reads the seed folders as single runs: one row of S runs.
  rows = report.summarise([report.load_run(os.path.join(w, f"seed_{s}")) for s in range(S)])
  assert [r["runs"] for r in rows.values()] == [S]


@pytest.mark.parametrize("spec,warm", [("default", False), ("digits:ll4al", True)])
def test_resume_after_a_kill_gives_the_same_ids(tmp_path, monkeypatch, spec, warm):
  # Warm LL4AL: the stacked model and loss-module states go through the checkpoint.
  c = get(spec, **{"al.num_rounds": 3, "al.num_seeds": S, "al.warm_start": warm})
  full = str(tmp_path / "full")
  loop.run(c, full)
  killed = str(tmp_path / "killed")
  # Killed at the first seed's check of round 2 (rounds 0, 1 are checkpointed).
  run_killed_at_check(monkeypatch, lambda: loop.run(c, killed), 2 * S + 1)
  for s in range(S):
    assert len(read(os.path.join(killed, f"seed_{s}"), "selected.jsonl")) == 3  # -1, 0, 1
  loop.run(c, killed)
  for s in range(S):
    a, b = (os.path.join(d, f"seed_{s}") for d in (full, killed))
    assert read(a, "selected.jsonl") == read(b, "selected.jsonl")
    assert [r["round"] for r in read(b, "metrics.jsonl")] == [0, 1, 2, 3]


def test_a_diverging_seed_is_named(tmp_path):
  c = get("default", **{"al.num_seeds": S, "train.learning_rate": 1e6, "seed": 3})
  with pytest.raises(FloatingPointError, match=r"epoch \d+ \(seed [34]\)"):
    loop.run(c, str(tmp_path / "w"))


def test_seeds_axis_on_the_mesh_selects_the_ids_of_one_device(tmp_path, devices):
  del devices
  ids = {}
  for mesh in ([("data", 1)], [("seeds", 2), ("data", -1)]):
    w = str(tmp_path / str(len(mesh)))
    loop.run(get("default", **{"al.num_seeds": S, "mesh": mesh}), w)
    ids[len(mesh)] = [[r["ids"] for r in read(os.path.join(w, f"seed_{s}"), "selected.jsonl")]
                      for s in range(S)]
  assert ids[1] == ids[2]


@pytest.mark.parametrize("over,message", [
    ({"al.num_seeds": 0}, r"al.num_seeds must be an integer >= 1"),
    ({"al.seed_map": "pmap"}, r"Unknown al.seed_map 'pmap'"),
    ({"al.num_seeds": 3, "mesh": [("seeds", 2), ("data", -1)]},
     r"al.num_seeds=3 must be a multiple of the mesh's 'seeds' axis \(2 devices\)"),
    ({"al.num_seeds": 2, "al.seed_map": "map", "mesh": [("seeds", 2), ("data", -1)]},
     r"al.seed_map='map' runs the seeds one after another"),
])
def test_bad_seed_settings_are_one_error_and_write_nothing(tmp_path, devices, over, message):
  del devices
  w = tmp_path / "w"
  with pytest.raises(ValueError, match=message):
    loop.run(get("default", **over), str(w))
  assert not w.exists()


def test_single_run_has_no_seed_folders(tmp_path):
  w = tmp_path / "w"
  summary = loop.run(get("default"), str(w))
  assert isinstance(summary, dict) and not list(w.glob("seed_*"))
  assert np.isfinite(summary["aubc"])


@pytest.mark.parametrize("seed_map", ["map", "vmap"])
def test_fit_over_seeds_against_one_fit_per_seed(seed_map):
  """What is exact: "map" trains bitwise like single fits on XLA:CPU; "vmap"
  only up to rounding (batched kernels). Pins the finding of al_jax/seeds.py."""
  import jax
  import ml_collections
  from al_jax import data, models, seeds as seeds_lib, sharding, train
  c = ml_collections.ConfigDict(dict(name="synthetic", num_examples=96, num_classes=3,
                                     shape=(8,), test_size=0.25, normalize=True))
  pool = data.make_pool(data.load(c, 0).x_train, data.load(c, 0).y_train, 16)
  mesh = sharding.make_mesh([("data", 1)])
  fns = models.build("mlp", (8,), 3, hidden=(32,), dropout=0.25)
  tcfg = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, batch_size=16,
                                        num_epochs=3, min_steps=0, weight_decay=0.0))
  labelled = np.zeros((S, len(pool.y)), bool)
  labelled[0, :40], labelled[1, 20:60] = True, True
  axis = seeds_lib.SeedAxis(0, S, mesh, seed_map)
  keys = [jax.random.split(jax.random.key(s)) for s in range(S)]
  inits = [fns.init(k[0]) for k in keys]
  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  one = train.make_fit(fns, tcfg, mesh)
  singles = [one(*inits[s], x, y, sharding.shard_rows(mesh, labelled[s]), keys[s][1])
             for s in range(S)]
  many = train.make_fit(fns, tcfg, mesh, seeds=axis)
  params, _, _, infos = many(*axis.stack(inits), axis.rows(np.stack([pool.x] * S)),
                             axis.rows(np.stack([pool.y] * S)), axis.rows(labelled),
                             axis.stack([k[1] for k in keys]))
  assert [i.loss for i in infos] != [infos[0].loss] * S  # the seeds trained differently
  for s in range(S):
    a, b = jax.tree.leaves(singles[s][0]), jax.tree.leaves(axis.take(params, s))
    if seed_map == "map":
      assert all(np.array_equal(u, v) for u, v in zip(a, b)), f"seed {s}"
    else:
      assert max(float(np.abs(u - v).max()) for u, v in zip(a, b)) < 1e-5


def test_a_function_that_cannot_be_batched_loops_over_the_seeds(caplog):
  """lift_or_loop: a jittable function with no batching rule (a pure_callback
  without vmap_method) runs once per seed, with one log line, and gives each
  seed its own result; the shared (None) argument reaches every call."""
  import jax
  import jax.numpy as jnp
  from al_jax import seeds as seeds_lib, sharding

  calls = []

  def host(a):
    calls.append(a.shape)
    return np.cumsum(np.asarray(a), axis=-1)

  def fn(x, c):
    return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + c

  axis = seeds_lib.SeedAxis(0, 3, sharding.make_mesh([("data", 1)]), "vmap")
  with pytest.raises(NotImplementedError):  # the premise: vmap cannot batch it
    jax.jit(axis.lift(fn, (0, None)))(jnp.ones((3, 4)), 1.0)
  x = jnp.arange(12.0).reshape(3, 4)
  lifted = axis.lift_or_loop("toy scores", fn, (0, None))
  with caplog.at_level("WARNING"):
    got = lifted(x, 10.0)
    again = lifted(x + 1, 10.0)  # the decision is kept: no second failed trace
  np.testing.assert_array_equal(got, np.cumsum(np.asarray(x), -1) + 10.0)
  np.testing.assert_array_equal(again, np.cumsum(np.asarray(x) + 1, -1) + 10.0)
  lines = [r.getMessage() for r in caplog.records if "cannot be batched" in r.getMessage()]
  assert len(lines) == 1 and "toy scores" in lines[0] and "3 seeds" in lines[0]
  assert calls and all(s == (4,) for s in calls)  # one seed's row per call
