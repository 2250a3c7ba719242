"""The penalty matrix of benchmarks/accuracy.py on hand-made curves."""

import importlib.util
import os

import numpy as np

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


def test_kw_for_keeps_own_kw_and_only_accepted_entries_for_others():
  base = {"num_samples": 10, "samples_per_pass": None, "num_configs": 500, "mask": "shared"}
  assert accuracy.kw_for("batchbald", "batchbald", base) == base
  assert accuracy.kw_for("bald", "batchbald", base) == {"num_samples": 10, "samples_per_pass": None}
  assert accuracy.kw_for("entropy", "batchbald", base) == {}


def test_table_configs_share_one_protocol_and_take_each_strategys_own_kw():
  from configs import default, table_digits, table_mnist10k, vaal_digits
  from al_jax.strategies import STRATEGIES
  for module, ref in ((table_digits, "entropy"), (table_mnist10k, "entropy")):
    base = module.get_config(ref).to_dict()
    for name in STRATEGIES:
      c = module.get_config(name).to_dict()
      assert c["strategy"]["name"] == name
      # Only the strategy (and its candidate subset) differs between rows.
      for key in ("data", "model", "model_name", "train", "score", "seed"):
        assert c[key] == base[key], (name, key)
      assert {k: v for k, v in c["al"].items() if k != "subset_size"} == \
          {k: v for k, v in base["al"].items() if k != "subset_size"}
  assert table_digits.get_config("bald").model.dropout == 0.5
  assert table_digits.get_config("vaal").strategy.kw == vaal_digits.get_config().strategy.kw
  assert table_digits.get_config("vaal,smoke").strategy.kw.num_steps == \
      vaal_digits.get_config("smoke").strategy.kw.num_steps
  assert table_digits.get_config("margin").strategy.kw.to_dict() == default.strategy_kw("margin")
  assert table_mnist10k.get_config("egl").al.subset_size == 2000  # from egl_mnist10k
  assert table_mnist10k.get_config("margin").al.subset_size == 0
  try:
    table_digits.get_config("nope")
  except ValueError as e:
    assert "'nope'" in str(e)
  else:
    raise AssertionError("unknown strategy accepted")


def test_per_strategy_runs_each_strategy_with_its_own_config_and_the_overrides(tmp_path):
  import json
  import subprocess
  import sys
  out = tmp_path / "out"
  env = {**os.environ, "XLA_FLAGS": ""}
  res = subprocess.run(
      [sys.executable, _PATH, "--config", "configs/table_digits.py:vaal,smoke", "--per_strategy",
       "--strategies", "vaal,bald", "--seeds", "1", "--out", str(out),
       "--config.al.num_rounds=1", "--config.strategy.kw.num_steps=3"],
      cwd=os.path.join(os.path.dirname(__file__), ".."), env=env, capture_output=True,
      text=True, timeout=600)
  assert res.returncode == 0, res.stderr[-2000:]
  cfg = {n: json.loads((out / "runs" / f"{n}_0" / "config.json").read_text())
         for n in ("random", "vaal", "bald")}
  assert cfg["vaal"]["strategy"]["kw"]["num_steps"] == 3  # the override, vaal only
  assert cfg["vaal"]["strategy"]["kw"]["disc_hidden"] == [256, 256]  # vaal_digits' kw
  assert cfg["bald"]["strategy"]["kw"] == {"num_samples": 20, "samples_per_pass": None,
                                           "mask": "per_example"}
  assert all(c["al"]["num_rounds"] == 1 and c["model"]["dropout"] == 0.5 for c in cfg.values())
  assert "| vaal | digits | mlp | 1 | 2 |" in (out / "table.md").read_text()  # report.table
