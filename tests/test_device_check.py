"""benchmarks/device_check.py --tiny runs every section on the CPU and writes its report."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tiny_device_check_writes_every_section(tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"),
                         "--tiny", "--out", str(tmp_path)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(tmp_path / "device_check.json") as f:
    report = json.load(f)
  secs = report["sections"]
  assert list(secs) == ["meta", "correctness", "determinism", "throughput", "badge_round",
                        "scale", "seeds"]
  bad = {k: (v["status"], v.get("error"), v.get("log_tail", "")[-1500:])
         for k, v in secs.items() if v["status"] != "ok"}
  assert not bad, bad
  assert secs["meta"]["result"]["backend"] == "cpu"
  assert secs["correctness"]["result"]["outcomes"]["PASSED"]
  rows = {r[0]: r[1] for r in secs["determinism"]["rows"]}
  for name in ("entropy", "badge", "coreset", "bald"):
    assert rows[f"{name}: deterministic run twice"] == "identical", rows
    ids = secs["determinism"]["result"]["runs"]["det_a"][name]
    assert len(ids["accuracy"]) == 2  # tiny: two trainings, one selection
  tp = secs["throughput"]["result"]
  assert tp["al_jax_float32"]["images_per_s"] > 0 and tp["al_jax_bfloat16"]["images_per_s"] > 0
  rnd = secs["badge_round"]["result"]
  # Recomputed from the paper config itself (its values follow docs/protocols.md).
  from configs import badge_cifar10
  al, tr = (lambda c: (c.al, c.train))(badge_cifar10.get_config(""))
  assert rnd["protocol_steps"] == sum(
      tr.num_epochs * -(-(al.initial_size + r * al.query_size) // tr.batch_size)
      for r in range(al.num_rounds + 1))
  assert rnd["protocol_seconds_extrapolated"] > 0
  for part in ("coreset", "badge", "bald", "batchbald"):
    assert secs["scale"]["result"][part]["valid"], secs["scale"]["result"]
  seeds = secs["seeds"]["result"]["digits_mlp"]
  assert seeds["one_seed_s"] > 0 and seeds["seeds_2_s"] > 0
  md = (tmp_path / "device_check.md").read_text()
  assert "| section | item | value | note |" in md
  for name in secs:
    assert f"**{name}**" in md
  assert "BatchBALD greedy" in md and "al_jax train step, bfloat16" in md
