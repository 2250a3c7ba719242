"""Faults and bad input: the workdir lock, one `error:` line per bad value,
the divergence guard, resume / extend semantics, kills, damaged checkpoints
and failing writes (issue 19).

Subprocess runs use the command line exactly as a user would; the rest call
`loop.run` in-process on the `:smoke` default config (seconds per run).
"""

import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from al_jax import loop, metrics, train
from tests.helpers import set_fields

ROOT = os.path.join(os.path.dirname(__file__), "..")
MNIST = os.path.join(ROOT, "..", "shared", "data", "mnist-t10k")


def get(**over):
  """The smoke default config on one device, as `cli` runs it (same numerics)."""
  from configs import default
  c = default.get_config("smoke")
  c.mesh = [("data", 1)]
  return set_fields(c, over)


def cli(*args, wait=True):
  """`python -m al_jax.main ARGS` as a user runs it (one CPU device)."""
  env = {**os.environ, "XLA_FLAGS": ""}
  cmd = [sys.executable, "-m", "al_jax.main", *args]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(res) -> str:
  """The run failed with exactly one line on stderr, starting `error:`."""
  lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
  assert res.returncode != 0, res.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-3000:]
  return lines[0]


def records(workdir, name):
  return metrics.read_jsonl(os.path.join(workdir, name))


def selected(workdir):
  return [r["ids"] for r in records(workdir, "selected.jsonl") if r["round"] >= 0]


@pytest.fixture(scope="module")
def ref3(tmp_path_factory):
  """An uninterrupted 3-round run: the ids every faulty run must end with."""
  w = str(tmp_path_factory.mktemp("ref3") / "w")
  loop.run(get(**{"al.num_rounds": 3}), w)
  return w


def copy_of(workdir, tmp_path):
  dst = str(tmp_path / "copy")
  shutil.copytree(workdir, dst)
  return dst


def smoke_args(workdir, *extra):
  return ("--config", "configs/default.py:smoke", "--workdir", str(workdir), *extra)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("args,expect", [
    (("--config", "configs/no_such_config.py"), "no such file 'configs/no_such_config.py'"),
    (("--config", "configs/default.py:smoke", "--config.strategy.kw.no_such_kw=1"),
     "--config.strategy.kw.no_such_kw: the config has no field"),
    (("--config", "configs/default.py:smoke", "--config.seed=-1"), "seed must be an integer >= 0"),
])
def test_cli_bad_value_is_one_error_line_and_writes_nothing(tmp_path, args, expect):
  w = tmp_path / "w"
  line = one_error_line(cli(*args, "--workdir", str(w)))
  assert expect in line
  assert not w.exists()


@pytest.mark.parametrize("field,value,expect", [
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("model.dropout", 2.0, r"model.dropout must be a number in \[0, 1\), got 2.0"),
    ("train.learning_rate", -0.001, "train.learning_rate must be a number > 0"),
    ("train.learning_rate", float("nan"), "train.learning_rate must be a number > 0"),
    ("train.batch_size", 0, "train.batch_size must be an integer >= 1"),
    ("train.momentum", 1.5, r"train.momentum must be a number in \[0, 1\)"),
    ("al.num_rounds", -2, "al.num_rounds must be an integer >= 0"),
    ("score.batch_size", 0, "score.batch_size must be an integer >= 1"),
    ("data.test_size", 1.5, r"data.test_size must be a count >= 1 or a fraction in \(0, 1\)"),
    ("ckpt.max_to_keep", 0, "ckpt.max_to_keep must be None or an integer >= 1"),
    ("strategy.kw", {"temperature": 2.0},
     r"strategy.kw.temperature is not a hyperparameter of strategy 'entropy'"),
])
def test_every_range_is_checked_before_anything_is_written(tmp_path, field, value, expect):
  w = tmp_path / "w"
  with pytest.raises(ValueError, match=expect):
    loop.run(get(**{field: value}), str(w))
  assert not w.exists()


def test_strategy_kw_ranges_are_checked(tmp_path):
  w = tmp_path / "w"
  c = get(**{"strategy.name": "bald", "strategy.kw": {"num_samples": 0}})
  with pytest.raises(ValueError, match="strategy.kw.num_samples must be an integer >= 1, got 0"):
    loop.run(c, str(w))
  assert not w.exists()


def test_workdir_that_is_a_file_is_refused(tmp_path):
  f = tmp_path / "afile"
  f.write_text("keep me")
  line = one_error_line(cli(*smoke_args(f)))
  assert f"--workdir {f} is a file" in line
  assert f.read_text() == "keep me"


@pytest.mark.parametrize("damage", ["truncated", "random_bytes"])
def test_damaged_idx_file_names_the_file(tmp_path, damage):
  data = tmp_path / "mnist"
  shutil.copytree(MNIST, data)
  img = data / "t10k-images-idx3-ubyte.gz"
  os.chmod(img, 0o644)
  raw = img.read_bytes()
  img.write_bytes(raw[:len(raw) // 2] if damage == "truncated"
                  else np.random.default_rng(0).bytes(4096))
  w = tmp_path / "w"
  c = get(**{"data.name": "mnist_idx", "data.path": str(data)})
  with pytest.raises(ValueError, match=f"data.path: cannot read {img}.*download it again"):
    loop.run(c, str(w))
  assert not w.exists()


# ---------------------------------------------------------------- the lock


def test_second_run_into_a_busy_workdir_fails_at_once_naming_the_holder(tmp_path):
  """Two concurrent starts: the second exits at once, the first is unharmed."""
  w = tmp_path / "w"
  first = cli(*smoke_args(w, "--config.al.num_rounds=2"), wait=False)
  deadline = time.time() + 120
  while not (w / "lock").exists():
    assert first.poll() is None and time.time() < deadline, first.communicate()
    time.sleep(0.02)
  t0 = time.time()
  second = cli(*smoke_args(w, "--config.al.num_rounds=2"))
  line = one_error_line(second)
  assert f"is in use by pid {first.pid} on host {socket.gethostname()}" in line, line
  # It stopped before loading data: no round of its own was attempted.
  assert time.time() - t0 < 60
  out, err = first.communicate(timeout=300)
  assert first.returncode == 0, err
  assert [r["round"] for r in records(w, "metrics.jsonl")] == [0, 1, 2]
  assert [r["round"] for r in records(w, "selected.jsonl")] == [-1, 0, 1]  # -1: initial set
  assert not (w / "lock").exists()


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
  from al_jax import lock
  w = tmp_path / "w"
  w.mkdir()
  held = lock.Lock(str(w))
  pid, host, _ = (w / "lock").read_text().split()
  assert (int(pid), host) == (os.getpid(), socket.gethostname())
  with pytest.raises(lock.WorkdirBusyError, match=f"in use by pid {os.getpid()} on host {host}"):
    lock.Lock(str(w))
  with pytest.raises(lock.WorkdirBusyError):
    loop.run(get(), str(w))  # refused before loading data or writing
  assert sorted(os.listdir(w)) == ["lock"]
  held.release()
  assert not (w / "lock").exists()
  lock.check_free(str(w))
  lock.Lock(str(w)).release()


# ---------------------------------------------------------------- kills


def _lock_pid(w):
  try:
    return int((w / "lock").read_text().split()[0])
  except (OSError, IndexError, ValueError):
    return None


def _kill_and_resume(tmp_path, ref, num_kills, seed):
  """Kills the command -9 at random moments, reruns it; ids match an unkilled run."""
  rounds = 3
  w = tmp_path / "w"
  rng = random.Random(seed)
  args = smoke_args(w, f"--config.al.num_rounds={rounds}")
  kills = 0
  for _ in range(num_kills):
    p = cli(*args, wait=False)
    # Startup (imports, data) takes a few seconds; the rounds follow. Kill
    # anywhere from the lock being taken to the run's end.
    deadline = time.time() + 120
    while p.poll() is None and _lock_pid(w) != p.pid:  # (a killed run's stale lock stays)
      assert time.time() < deadline
      time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 4.0))
    if p.poll() is None:
      p.send_signal(signal.SIGKILL)
      kills += 1
    p.communicate()
    # Whatever the moment, the records on disk are whole lines of whole rounds.
    recs = records(w, "metrics.jsonl")
    assert len({r["round"] for r in recs}) == len(recs)
  stale = _lock_pid(w)  # a killed run's lock: recognised as stale and taken over
  res = cli(*args)
  assert res.returncode == 0, res.stderr
  assert selected(w) == selected(ref)
  recs = records(w, "metrics.jsonl")
  assert [r["round"] for r in recs] == list(range(rounds + 1))
  np.testing.assert_allclose([r["accuracy"] for r in recs],
                             [r["accuracy"] for r in records(ref, "metrics.jsonl")])
  assert not (w / "lock").exists()
  if stale is not None:
    assert f"Taking over the stale lock of pid {stale}" in res.stderr
  return kills


def test_kill_at_random_points_resumes_to_the_same_ids(tmp_path, ref3):
  assert _kill_and_resume(tmp_path, ref3, num_kills=2, seed=0) >= 1


@pytest.mark.slow
def test_kill_at_random_points_many_times(tmp_path, ref3):
  assert _kill_and_resume(tmp_path, ref3, num_kills=15, seed=1) >= 10


# ---------------------------------------------------------------- damaged disk


def test_truncated_checkpoint_is_one_line_naming_the_round_and_the_fix(tmp_path, ref3):
  w = copy_of(ref3, tmp_path)
  last = os.path.join(w, "ckpt", "3")
  for root, _, files in os.walk(last):
    for name in files:
      p = os.path.join(root, name)
      with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)
  line = one_error_line(cli(*smoke_args(w, "--config.al.num_rounds=3")))
  assert f"the checkpoint of round 3 ({last}) is unreadable" in line, line
  assert "delete that folder and run the same command again" in line
  # Following the advice recovers the run: round 3 is redone from round 2's checkpoint.
  shutil.rmtree(last)
  loop.run(get(**{"al.num_rounds": 3}), w)
  assert selected(w) == selected(ref3)
  assert records(w, "metrics.jsonl") != []
  assert [r["round"] for r in records(w, "metrics.jsonl")] == [0, 1, 2, 3]


# metrics: the 6th write is round 1's selection (after config.json, the two
# resume truncations and round 0's two records); checkpoint: round 1's.
@pytest.mark.parametrize("target,fail_at", [
    ("metrics", 6), pytest.param("checkpoint", 2, marks=pytest.mark.slow)])
def test_failing_write_is_a_clear_error_and_leaves_whole_records(tmp_path, monkeypatch, ref3,
                                                                   target, fail_at):
  c = get(**{"al.num_rounds": 3})
  ref, w = ref3, str(tmp_path / "w")
  calls = []

  def disk_full(*args, **kwargs):
    calls.append(1)
    if len(calls) == fail_at:
      raise OSError(28, "No space left on device")
    return real(*args, **kwargs)

  if target == "metrics":
    real = metrics._atomic_write
    monkeypatch.setattr(metrics, "_atomic_write", disk_full)
  else:
    from al_jax import checkpoint
    real = checkpoint.Checkpointer.save
    monkeypatch.setattr(checkpoint.Checkpointer, "save",
                        lambda self, *a, **k: disk_full(self, *a, **k))
  with pytest.raises(loop.WorkdirError,
                     match=r"writing round 1 into .* failed \(\[Errno 28\] No space left.*"
                           r"run the same command again"):
    loop.run(c, w)
  monkeypatch.undo()
  recs = records(w, "metrics.jsonl")  # parses: no torn line
  assert [r["round"] for r in recs] == list(range(len(recs)))
  assert not os.path.exists(os.path.join(w, "lock"))
  loop.run(c, w)
  assert selected(w) == selected(ref)
  assert [r["round"] for r in records(w, "metrics.jsonl")] == [0, 1, 2, 3]


# ---------------------------------------------------------------- divergence


def test_divergence_guard_rule():
  cfg = get().train
  g = train.DivergenceGuard(cfg)
  g.check(0, 10, 2.0, 0.0, 2.3)  # reference: the first batch's loss, 2.3
  for e in (1, 2):
    g.check(e, 10, 30.0, 0.0, 0.0)  # above 10 x 2.3 + 1 = 24, but only twice
  g.check(3, 10, 1.0, 0.0, 0.0)  # back down: the count restarts
  g.check(4, 10, 30.0, 0.0, 0.0)
  g.check(5, 10, 30.0, 0.0, 0.0)
  with pytest.raises(FloatingPointError, match=r"epoch 6: mean loss 30 stayed above 24 .*"
                                               r"learning_rate=0.001"):
    g.check(6, 10, 30.0, 0.0, 0.0)
  with pytest.raises(FloatingPointError, match="non-finite in epoch 1"):
    train.DivergenceGuard(cfg).check(1, 10, float("inf"), 0.0, 2.0)
  short = train.DivergenceGuard(cfg)  # two epochs: the second alone decides
  short.check(0, 2, 2.0, 0.0, 2.3)
  with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
    short.check(1, 2, 30.0, 0.0, 0.0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_huge_learning_rate_stops_every_optimizer_and_the_fix_reuses_the_workdir(
    tmp_path, optimizer):
  w = str(tmp_path / "w")
  bad = get(**{"train.optimizer": optimizer, "train.learning_rate": 1e9, "al.num_rounds": 1})
  with pytest.raises(FloatingPointError,
                     match=r"(diverged|non-finite) in epoch \d.*learning_rate=1000000000.0"):
    loop.run(bad, w)
  if optimizer == "adam":  # The corrected command runs in the same workdir.
    loop.run(get(**{"train.optimizer": optimizer, "al.num_rounds": 1}), w)
    assert [r["round"] for r in records(w, "metrics.jsonl")] == [0, 1]


# ---------------------------------------------------------------- resume / extend


@pytest.mark.parametrize("warm", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_extending_num_rounds_makes_the_skipped_query_first(tmp_path, ref3, warm):
  full, w = str(tmp_path / "full"), str(tmp_path / "w")
  if warm:
    loop.run(get(**{"al.num_rounds": 3, "al.warm_start": warm}), full)
  else:
    full = ref3
  loop.run(get(**{"al.num_rounds": 1, "al.warm_start": warm}), w)
  summary = loop.run(get(**{"al.num_rounds": 3, "al.warm_start": warm}), w)
  recs = records(w, "metrics.jsonl")
  assert [r["num_labelled"] for r in recs] == [16, 24, 32, 40]
  assert selected(w) == selected(full)
  with open(os.path.join(w, "config.json")) as f:
    assert json.load(f)["al"]["num_rounds"] == 3
  assert summary["rounds"] == 4


def test_fewer_rounds_than_done_is_refused_and_changes_nothing(tmp_path, ref3):
  w = copy_of(ref3, tmp_path)
  before = {n: open(os.path.join(w, n)).read() for n in ("config.json", "metrics.jsonl",
                                                         "summary.json")}
  with pytest.raises(ValueError, match=r"al.num_rounds=2 but workdir .* already holds rounds "
                                       r"0-3; pass --config.al.num_rounds=3 or more"):
    loop.run(get(**{"al.num_rounds": 2}), w)
  assert before == {n: open(os.path.join(w, n)).read() for n in before}


def test_subset_size_is_part_of_the_resume_check(tmp_path, ref3):
  w = copy_of(ref3, tmp_path)
  with pytest.raises(ValueError, match=r"different config \(al.subset_size: 0 -> 32\)"):
    loop.run(get(**{"al.num_rounds": 3, "al.subset_size": 32}), w)


def test_duplicate_and_unfinished_round_records_are_dropped_on_resume(tmp_path, ref3):
  w = copy_of(ref3, tmp_path)
  c = get(**{"al.num_rounds": 3})
  good_m, good_s = records(w, "metrics.jsonl"), records(w, "selected.jsonl")
  # What two concurrent runs left before the lock: duplicated rounds, and a
  # record of a round that was never checkpointed.
  metrics.write_jsonl(os.path.join(w, "metrics.jsonl"),
                      good_m[:1] + good_m + [{**good_m[-1], "round": 4}])
  metrics.write_jsonl(os.path.join(w, "selected.jsonl"), good_s[:1] + good_s)
  loop.run(c, w)
  assert records(w, "metrics.jsonl") == good_m
  assert records(w, "selected.jsonl") == good_s
