"""`python -m al_jax.report`: honest grouping, flagged runs, table, CSV and plots."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from al_jax import metrics, report

ROOT = os.path.join(os.path.dirname(__file__), "..")


def fake_run(path, strategy, seed, acc, dataset="digits", num_rounds=None, model="mlp", **extra):
  """A run folder; num_rounds defaults to a finished run (len(acc) - 1)."""
  os.makedirs(path)
  cfg = {"strategy": {"name": strategy, "kw": extra.pop("kw", {})}, "seed": seed,
         "data": {"name": dataset}, "model_name": model, "progress": seed % 2 == 0,
         "al": {"num_rounds": len(acc) - 1 if num_rounds is None else num_rounds,
                "query_size": extra.pop("query_size", 10)}}
  metrics.write_json(os.path.join(path, "config.json"), cfg)
  metrics.write_jsonl(os.path.join(path, "metrics.jsonl"),
                      [{"round": i, "num_labelled": 10 + 10 * i, "accuracy": a}
                       for i, a in enumerate(acc)])
  return str(path)


def summarise(*paths):
  return report.summarise([report.load_run(str(p)) for p in paths])


def test_seeds_are_averaged_within_one_experiment(tmp_path):
  a0 = fake_run(tmp_path / "a0", "entropy", 0, [0.5, 0.7, 0.9])
  a1 = fake_run(tmp_path / "a1", "entropy", 1, [0.5, 0.9, 0.9])
  r0 = fake_run(tmp_path / "r0", "random", 0, [0.5, 0.6, 0.7])
  s = summarise(a0, a1, r0)
  assert sorted(s) == ["entropy", "random"]  # `progress` differs but is ignored.
  assert s["entropy"]["runs"] == 2 and s["entropy"]["workdirs"] == [a0, a1]
  assert s["entropy"]["aubc_mean"] == pytest.approx(((0.6 + 0.8) / 2 + (0.7 + 0.9) / 2) / 2)
  assert s["random"]["aubc_mean"] == pytest.approx((0.55 + 0.65) / 2)
  assert s["entropy"]["acc_mean"] == pytest.approx([0.5, 0.8, 0.9])
  rows = report.table(s).splitlines()
  # Sample sd (ddof=1) of 0.7 and 0.8; 95% t-interval with 1 degree of freedom.
  half = 12.706205 * 0.0707107 / 2 ** 0.5
  assert s["entropy"]["aubc_ci95"] == pytest.approx([0.75 - half, 0.75 + half], abs=1e-5)
  assert rows[2].startswith("| entropy | digits | mlp | 2 | 3 | 0.7500 ± 0.0707 | "
                            f"[{0.75 - half:.4f}, {0.75 + half:.4f}] | 0.9000 | a0, a1 |")
  assert "Not averaged" not in report.table(s)


def test_datasets_models_and_settings_are_never_averaged_together(tmp_path):
  d = fake_run(tmp_path / "d", "entropy", 0, [0.5, 0.7])
  m = fake_run(tmp_path / "m", "entropy", 0, [0.2, 0.4], dataset="mnist10k")
  c = fake_run(tmp_path / "c", "entropy", 0, [0.1, 0.3], model="cnn")
  q = fake_run(tmp_path / "q", "entropy", 0, [0.3, 0.3], query_size=20)
  s = summarise(d, m, c, q)
  assert len(s) == 4 and all(v["runs"] == 1 for v in s.values())
  assert {v["dataset"] for v in s.values()} == {"digits", "mnist10k"}
  labels = sorted(s)
  assert "entropy [al.query_size=20] (digits, mlp)" in labels
  assert "entropy [al.query_size=10] (mnist10k, mlp)" in labels
  assert "entropy [al.query_size=10] (digits, cnn)" in labels


def test_strategy_keywords_show_only_when_they_differ_within_a_strategy(tmp_path):
  b1 = fake_run(tmp_path / "b1", "bald", 0, [0.5, 0.7], kw={"num_samples": 10})
  b2 = fake_run(tmp_path / "b2", "bald", 0, [0.5, 0.8], kw={"num_samples": 20})
  e = fake_run(tmp_path / "e", "entropy", 0, [0.5, 0.6])
  assert sorted(summarise(b1, b2, e)) == [
      "bald [strategy.kw.num_samples=10]", "bald [strategy.kw.num_samples=20]", "entropy"]
  k1 = fake_run(tmp_path / "k1", "kmeans", 0, [0.5, 0.7], kw={"num_iters": 5})
  assert sorted(summarise(b1, k1, e)) == ["bald", "entropy", "kmeans"]


def test_unfinished_diverged_and_duplicate_runs_are_flagged_not_averaged(tmp_path):
  ok = fake_run(tmp_path / "ok", "entropy", 0, [0.5, 0.7, 0.9])
  dup = fake_run(tmp_path / "z_dup", "entropy", 0, [0.1, 0.1, 0.1])
  part = fake_run(tmp_path / "part", "entropy", 1, [0.5, 0.6], num_rounds=2)
  nan = fake_run(tmp_path / "nan", "entropy", 2, [0.5, float("nan"), 0.1])
  s = summarise(dup, ok, part, nan, ok)  # The first folder by name is kept.
  row = s["entropy"]
  assert row["runs"] == 1 and row["workdirs"] == [ok]
  assert row["aubc_mean"] == pytest.approx(0.7)
  why = dict(row["excluded"])
  assert why[part] == "unfinished" and why[nan] == "diverged"
  assert why[dup].startswith("duplicate of") and why[ok].startswith("duplicate")
  text = report.table(s)
  assert "Not averaged:" in text and f"- {part} (entropy): unfinished" in text
  only_bad = summarise(part)
  assert only_bad["entropy"]["runs"] == 0
  assert "no usable run" in report.table(only_bad)


def test_csv_matches_the_table(tmp_path):
  a = fake_run(tmp_path / "a", "margin", 0, [0.4, 0.8])
  b = fake_run(tmp_path / "b", "margin", 1, [0.4], num_rounds=1)
  rows = list(csv.DictReader(io.StringIO(report.to_csv(summarise(a, b)))))
  assert len(rows) == 1
  assert rows[0]["strategy"] == "margin" and rows[0]["runs"] == "1"
  assert float(rows[0]["aubc_mean"]) == pytest.approx(0.6)
  assert rows[0]["workdirs"] == a and "unfinished" in rows[0]["excluded"]


def test_cli_writes_table_csv_json_and_one_plot_per_dataset(tmp_path):
  a = fake_run(tmp_path / "a0", "margin", 0, [0.4, 0.8])
  m = fake_run(tmp_path / "m0", "margin", 0, [0.3, 0.5], dataset="mnist10k")
  out = tmp_path / "out"
  res = subprocess.run([sys.executable, "-m", "al_jax.report", a, m, "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, check=True)
  assert "| margin (digits) | digits | mlp | 1 | 2 | 0.6000" in res.stdout
  assert (out / "table.md").read_text().strip() == res.stdout.strip()
  assert "aubc_mean" in (out / "aubc.csv").read_text()
  assert json.loads((out / "aubc.json").read_text())["margin (digits)"]["runs"] == 1
  assert (out / "learning_curves_digits.png").exists()
  assert (out / "learning_curves_mnist10k.png").exists()
  bad = subprocess.run([sys.executable, "-m", "al_jax.report", str(tmp_path / "nope")],
                       cwd=ROOT, capture_output=True, text=True)
  assert bad.returncode != 0 and "holds no run" in bad.stderr


def test_plot_labels_aubc_and_names_the_dataset(tmp_path, monkeypatch):
  seen = {}
  monkeypatch.setattr(metrics, "plot_curves",
                      lambda path, curves, title="": seen.update(curves=curves, title=title))
  s = summarise(fake_run(tmp_path / "a", "margin", 0, [0.4, 0.8]))
  report.plot(str(tmp_path), s)
  assert list(seen["curves"]) == ["margin: AUBC 0.600"]
  assert seen["title"].startswith("digits:")
