"""Two jax.distributed CPU processes (2 devices each) select what one process selects,
also when one process is killed mid-run and the job is relaunched."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
ARGS = ["--config", "configs/default.py:smoke", "--config.al.num_rounds=3"]


def ids(workdir):
  with open(os.path.join(workdir, "selected.jsonl")) as f:
    recs = [json.loads(line) for line in f]
  return [r["ids"] for r in recs if r["round"] >= 0]  # Round -1: the initial set.


def rounds(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line)["round"] for line in f if line.strip()]


def launch(tmp_path, workdir, tag):
  env = {**os.environ, "PYTHON": sys.executable, "AL_JAX_LOG_DIR": str(tmp_path / tag)}
  env.pop("XLA_FLAGS", None)
  return subprocess.Popen(["bash", "launch/local_multiprocess.sh", "2", "2", "--", *ARGS,
                           "--workdir", str(workdir)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)


def logs(tmp_path, tag):
  return "".join((tmp_path / tag / f"process_{i}.log").read_text() for i in range(2)
                 if (tmp_path / tag / f"process_{i}.log").exists())


@pytest.fixture(scope="module")
def single_process_ids(tmp_path_factory):
  out = tmp_path_factory.mktemp("sp")
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  subprocess.run([sys.executable, "-m", "al_jax.main", *ARGS, "--workdir", str(out)],
                 cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
  return ids(str(out))


def test_launch_two_processes_matches_single_process(tmp_path, single_process_ids):
  p = launch(tmp_path, tmp_path / "mp", "logs")
  out, _ = p.communicate(timeout=300)
  assert p.returncode == 0, out + logs(tmp_path, "logs")
  assert len(single_process_ids) == 3 and ids(str(tmp_path / "mp")) == single_process_ids
  # Only process 0 wrote: one metrics line per round, no duplicates.
  assert rounds(str(tmp_path / "mp")) == [0, 1, 2, 3]


def test_kill_one_process_then_relaunch_resumes(tmp_path, single_process_ids):
  wd = tmp_path / "mp"
  p = launch(tmp_path, wd, "run1")
  deadline = time.time() + 240
  while not rounds(str(wd)) or max(rounds(str(wd))) < 1:
    assert p.poll() is None and time.time() < deadline, logs(tmp_path, "run1")
    time.sleep(0.2)
  # Process 1 dies (think: a preempted host). Process 0 then blocks in a
  # collective, as a real job would, so the whole job is torn down.
  os.kill(int((tmp_path / "run1" / "process_1.pid").read_text()), signal.SIGKILL)
  time.sleep(1.0)
  os.killpg(p.pid, signal.SIGKILL)
  p.wait()
  assert max(rounds(str(wd))) < 3, "the run finished before the kill; nothing was tested"
  # The same command again resumes from the last checkpoint.
  p = launch(tmp_path, wd, "run2")
  out, _ = p.communicate(timeout=300)
  assert p.returncode == 0, out + logs(tmp_path, "run2")
  assert ids(str(wd)) == single_process_ids
  assert rounds(str(wd)) == [0, 1, 2, 3]
