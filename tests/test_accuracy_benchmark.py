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
  base = {"num_samples": 10, "samples_per_pass": None, "num_configs": 500}
  assert accuracy.kw_for("batchbald", "batchbald", base) == base
  assert accuracy.kw_for("bald", "batchbald", base) == {"num_samples": 10, "samples_per_pass": None}
  assert accuracy.kw_for("entropy", "batchbald", base) == {}
