"""AUBC and output files."""

import numpy as np
import pytest

from al_jax import metrics


def test_aubc_matches_trapezoid_over_labels_added():
  n = [20, 40, 60, 100]
  acc = [0.5, 0.7, 0.8, 0.9]
  # Hand computation: areas 20*0.6 + 20*0.75 + 40*0.85 = 61 over 80 labels added.
  assert metrics.aubc(n, acc) == pytest.approx(61 / 80)
  assert metrics.aubc(n, acc) == pytest.approx(np.trapezoid(acc, n) / 80)
  assert metrics.aubc([20], [0.4]) == pytest.approx(0.4)
  with pytest.raises(ValueError):
    metrics.aubc([1, 2], [0.1])


def test_jsonl_roundtrip_and_plot(tmp_path):
  p = str(tmp_path / "m.jsonl")
  metrics.append_jsonl(p, {"round": 0, "a": 1.0})
  metrics.append_jsonl(p, {"round": 1, "a": 2.0})
  assert [r["round"] for r in metrics.read_jsonl(p)] == [0, 1]
  png = str(tmp_path / "c.png")
  metrics.plot_curves(png, {"x": ([1, 2], [0.1, 0.2]), "y": ([1, 2], [0.2, 0.3], [0.01, 0.02])})
  with open(png, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert [f.name for f in tmp_path.iterdir() if ".tmp" in f.name] == []


def test_environment_records_versions_and_xla_flags():
  import os
  import jax
  env = metrics.environment()
  assert env["versions"]["jax"] == jax.__version__
  assert env["xla_flags"] == os.environ.get("XLA_FLAGS", "")
  assert "--xla_force_host_platform_device_count=8" in env["xla_flags"]  # tests/conftest.py
  assert env["backend"] == jax.default_backend() and env["device_count"] == jax.device_count()
