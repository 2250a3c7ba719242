"""Two jax.distributed CPU processes (2 devices each) select what one process selects."""

import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")


def ids(workdir):
  with open(os.path.join(workdir, "selected.jsonl")) as f:
    return [json.loads(line)["ids"] for line in f]


def test_launch_two_processes_matches_single_process(tmp_path):
  args = ["--config", "configs/default.py:smoke", "--config.al.num_rounds=2"]
  env = {**os.environ, "PYTHON": sys.executable, "AL_JAX_LOG_DIR": str(tmp_path / "logs")}
  env.pop("XLA_FLAGS", None)
  res = subprocess.run(["bash", "launch/local_multiprocess.sh", "2", "2", "--", *args,
                        "--workdir", str(tmp_path / "mp")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  logs = "".join((tmp_path / "logs" / f"process_{i}.log").read_text() for i in range(2))
  assert res.returncode == 0, res.stderr + logs
  single_env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  subprocess.run([sys.executable, "-m", "al_jax.main", *args, "--workdir", str(tmp_path / "sp")],
                 cwd=ROOT, env=single_env, check=True, capture_output=True, timeout=300)
  mp, sp = ids(str(tmp_path / "mp")), ids(str(tmp_path / "sp"))
  assert len(mp) == 2 and mp == sp
  # Only process 0 wrote: one metrics line per round, no duplicates.
  with open(tmp_path / "mp" / "metrics.jsonl") as f:
    assert [json.loads(line)["round"] for line in f] == [0, 1, 2]
