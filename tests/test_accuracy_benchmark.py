"""The penalty matrix of benchmarks/accuracy.py on hand-made curves."""

import importlib.util
import os

import numpy as np
import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "accuracy.py")
_spec = importlib.util.spec_from_file_location("accuracy_benchmark", _PATH)
accuracy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accuracy)


def test_penalty_matrix_counts_significant_wins():
  rng = np.random.default_rng(0)
  base = rng.uniform(0.5, 0.6, size=(5, 6))  # 5 seeds, 6 rounds
  noise = rng.normal(0, 0.001, size=(5, 6))
  curves = {"good": base + 0.1 + noise, "bad": base, "same": base + noise * 0.5}
  curves["good"][:, 0] = curves["bad"][:, 0] = curves["same"][:, 0]  # shared round 0
  names, p = accuracy.penalty_matrix(curves)
  i = {n: k for k, n in enumerate(names)}
  assert p[i["good"], i["bad"]] == 1.0 and p[i["bad"], i["good"]] == 0.0
  assert p[i["good"], i["same"]] == 1.0
  assert p[i["same"], i["bad"]] <= 0.4  # tiny noise: rarely significant
  assert np.all(np.diag(p) == 0)


def test_comparison_marks_earlier_means_outside_the_new_interval(tmp_path):
  import json
  summary = {"a": {"aubc_mean": 0.81, "aubc_ci95": [0.79, 0.83], "runs": 10},
             "b": {"aubc_mean": 0.75, "aubc_ci95": [0.74, 0.76], "runs": 10},
             "c": {"aubc_mean": 0.60, "aubc_ci95": [0.59, 0.61], "runs": 10},
             "d [x=1]": {"aubc_mean": 0.50, "aubc_ci95": [0.49, 0.51], "runs": 10,
                         "strategy": "d"}}
  (tmp_path / "aubc.json").write_text(json.dumps({
      "a": {"aubc_mean": 0.80, "runs": 3}, "b": {"aubc_mean": 0.70, "runs": 3},
      "d": {"aubc_mean": 0.505, "runs": 3, "strategy": "d"}}))
  rows = {l.split(" | ")[0].strip("| "): l for l in accuracy.comparison(summary, str(tmp_path))
          if l.startswith("| ") and "strategy" not in l}
  assert rows["a"].endswith("| 3 | 0.8000 | yes |")
  assert rows["b"].endswith("| 3 | 0.7000 | **no** |")
  assert rows["c"].endswith("| - | - | - |")  # not in the earlier table
  assert rows["d [x=1]"].endswith("| 3 | 0.5050 | yes |")  # matched by strategy name
  assert list(rows) == ["a", "b", "c", "d [x=1]"]  # best first


def test_against_random_pairs_the_seeds():
  from scipy import stats
  from al_jax import metrics
  n = [20, 40, 60]
  def run(name, seed, accs):
    return {"strategy": name, "seed": seed, "num_labelled": n, "accuracy": accs}
  runs = [run("random", 0, [0.5, 0.6, 0.7]), run("random", 1, [0.5, 0.7, 0.8]),
          run("good", 0, [0.5, 0.7, 0.8]), run("good", 1, [0.5, 0.75, 0.8]),
          run("good", 2, [0.9, 0.9, 0.9])]  # seed 2: no random run to pair with
  rows = [l for l in accuracy.against_random(runs) if l.startswith("| good")]
  a = [metrics.aubc(n, [0.5, 0.7, 0.8]), metrics.aubc(n, [0.5, 0.75, 0.8])]
  b = [metrics.aubc(n, [0.5, 0.6, 0.7]), metrics.aubc(n, [0.5, 0.7, 0.8])]
  p = stats.ttest_rel(a, b).pvalue
  assert rows == [f"| good | 2 | {np.mean(np.subtract(a, b)):+.4f} | 2/2 | {p:.2g} |"]


def test_protocol_tables_share_one_protocol_and_take_each_strategys_tuned_kw():
  from configs import digits, mnist10k
  from al_jax.config_utils import factory_kw
  from al_jax.strategies import STRATEGIES
  for module in (digits, mnist10k):
    base = module.get_config("entropy,table").to_dict()
    for name in STRATEGIES:
      c = module.get_config(f"{name},table").to_dict()
      assert c["strategy"]["name"] == name
      assert set(c["strategy"]["kw"]) == set(factory_kw(name))  # every keyword listed
      # Only the strategy (its candidate subset, ISAL's held-out rows) differs between rows.
      for key in ("data", "model", "model_name", "train", "score", "seed"):
        assert c[key] == base[key], (name, key)
      own = ("subset_size", "validation_size")
      assert {k: v for k, v in c["al"].items() if k not in own} == \
          {k: v for k, v in base["al"].items() if k not in own}
  assert digits.get_config("bald,table").model.dropout == 0.5
  assert digits.get_config("margin,table").model.dropout == 0.5
  assert digits.get_config("margin").model.dropout == 0.0
  assert digits.get_config("bald").model.dropout == 0.5  # MC dropout needs dropout
  assert digits.get_config("vaal,table").strategy.kw.disc_hidden == (256, 256)  # TUNED
  assert digits.get_config("vaal,table,smoke").strategy.kw.num_steps == 20
  assert digits.get_config("margin,table").strategy.kw.to_dict() == factory_kw("margin")
  assert mnist10k.get_config("egl,table").al.subset_size == 2000
  assert mnist10k.get_config("egl,table,smoke").al.subset_size == 0
  assert mnist10k.get_config("margin,table").al.subset_size == 0
  assert mnist10k.get_config("vaal").strategy.kw.channels == (32, 64)
  for bad in ("nope", "badge,margin", "badge,tabel"):
    try:
      digits.get_config(bad)
    except ValueError as e:
      assert repr(bad) in str(e)
    else:
      raise AssertionError(f"config argument {bad!r} accepted")


def _run(*args):
  import subprocess
  import sys
  env = {**os.environ, "XLA_FLAGS": ""}
  return subprocess.run([sys.executable, _PATH, *args],
                        cwd=os.path.join(os.path.dirname(__file__), ".."), env=env,
                        capture_output=True, text=True, timeout=600)


def test_runs_each_strategy_with_its_own_config_and_the_overrides(tmp_path):
  import json
  out = tmp_path / "out"
  res = _run("--config", "configs/digits.py:table,smoke", "--strategies", "vaal,bald",
             "--seeds", "1", "--out", str(out), "--config.al.num_rounds=1",
             "--config.strategy.kw.num_steps=3")
  assert res.returncode == 0, res.stderr[-2000:]
  cfg = {n: json.loads((out / "runs" / f"{n}_0" / "config.json").read_text())
         for n in ("random", "vaal", "bald")}
  assert cfg["vaal"]["strategy"]["kw"]["num_steps"] == 3  # the override, vaal only
  assert cfg["vaal"]["strategy"]["kw"]["disc_hidden"] == [256, 256]  # digits TUNED
  assert cfg["bald"]["strategy"]["kw"] == {"num_samples": 4, "samples_per_pass": None,
                                           "mask": "per_example"}
  assert all(c["al"]["num_rounds"] == 1 and c["model"]["dropout"] == 0.5 for c in cfg.values())
  assert "| vaal | digits | mlp | 1 | 2 |" in (out / "table.md").read_text()  # report.table


@pytest.mark.parametrize("override,message", [
    ("--config.strategy.kw.num_stepz=3", "none of ['random', 'vaal'] takes a keyword 'num_stepz'"),
    ("--config.al.num_roundz=1", "the config has no field 'al.num_roundz'")])
def test_bad_override_is_one_error_line(tmp_path, override, message):
  res = _run("--config", "configs/digits.py:table,smoke", "--strategies", "vaal", "--seeds", "1",
             "--out", str(tmp_path / "out"), override)
  assert res.returncode == 1
  last = res.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last, res.stderr[-500:]
  assert "Traceback" not in res.stderr
