"""`python -m al_jax.report` turns run folders into an AUBC table and a plot."""

import json
import os
import subprocess
import sys

import pytest

from al_jax import metrics, report

ROOT = os.path.join(os.path.dirname(__file__), "..")


def fake_run(path, strategy, seed, acc):
  os.makedirs(path)
  metrics.write_json(os.path.join(path, "config.json"), {"strategy": {"name": strategy}, "seed": seed})
  metrics.write_jsonl(os.path.join(path, "metrics.jsonl"),
                      [{"round": i, "num_labelled": 10 + 10 * i, "accuracy": a} for i, a in enumerate(acc)])


def test_summary_groups_seeds_and_averages(tmp_path):
  fake_run(tmp_path / "a0", "entropy", 0, [0.5, 0.7, 0.9])
  fake_run(tmp_path / "a1", "entropy", 1, [0.5, 0.9, 0.9])
  fake_run(tmp_path / "r0", "random", 0, [0.5, 0.6, 0.7])
  s = report.summarise([report.load_run(str(tmp_path / d)) for d in ("a0", "a1", "r0")])
  assert s["entropy"]["runs"] == 2
  assert s["entropy"]["aubc_mean"] == pytest.approx(((0.6 + 0.8) / 2 + (0.7 + 0.9) / 2) / 2)
  assert s["random"]["aubc_mean"] == pytest.approx((0.55 + 0.65) / 2)
  assert s["entropy"]["acc_mean"] == pytest.approx([0.5, 0.8, 0.9])
  assert report.table(s).splitlines()[2].startswith("| entropy |")


def test_cli_writes_plot_and_json(tmp_path):
  fake_run(tmp_path / "a0", "margin", 0, [0.4, 0.8])
  out = tmp_path / "out"
  res = subprocess.run([sys.executable, "-m", "al_jax.report", str(tmp_path / "a0"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, check=True)
  assert "| margin | 1 | 2 | 0.6000" in res.stdout
  assert json.loads((out / "aubc.json").read_text())["margin"]["runs"] == 1
  assert (out / "learning_curves.png").exists()
  bad = subprocess.run([sys.executable, "-m", "al_jax.report", str(tmp_path / "nope")],
                       cwd=ROOT, capture_output=True, text=True)
  assert bad.returncode != 0 and "holds no run" in bad.stderr
