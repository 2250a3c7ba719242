"""The command line: `python -m al_jax.main --config ... --workdir ...`."""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run(*args):
  env = {**os.environ, "XLA_FLAGS": ""}  # one CPU device, as a user would have
  return subprocess.run([sys.executable, "-m", "al_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def test_default_smoke_with_override(tmp_path):
  w = tmp_path / "w"
  res = run("--config", "configs/default.py:smoke", "--workdir", str(w),
            "--config.strategy.name=margin", "--config.al.num_rounds=1")
  assert res.returncode == 0, res.stderr
  assert "AUBC margin:" in res.stdout
  assert (w / "learning_curve.png").exists() and (w / "metrics.jsonl").read_text().count("\n") == 2


def test_bad_value_is_one_line_and_nothing_written(tmp_path):
  w = tmp_path / "w"
  res = run("--config", "configs/default.py:smoke", "--workdir", str(w),
            "--config.strategy.name=best_strategy")
  assert res.returncode == 1
  assert res.stderr.strip().splitlines()[-1].startswith("error: Unknown strategy 'best_strategy'")
  assert "Traceback" not in res.stderr
  assert not w.exists()


def test_strategy_kw_override_for_a_strategy_named_on_the_command_line(tmp_path):
  import json
  w = tmp_path / "w"
  res = run("--config", "configs/default.py:smoke", "--workdir", str(w),
            "--config.strategy.name=badge", "--config.strategy.kw.bias=True",
            "--config.al.num_rounds=1")
  assert res.returncode == 0, res.stderr
  from al_jax.config_utils import factory_kw
  assert json.loads((w / "config.json").read_text())["strategy"] == {
      "name": "badge", "kw": {**factory_kw("badge"), "bias": True}}


def test_unknown_strategy_keyword_or_field_is_one_line(tmp_path):
  from al_jax.config_utils import factory_kw
  w = tmp_path / "w"
  for flag, message in (
      ("--config.strategy.kw.biass=True",
       "error: --config.strategy.kw.biass: the config has no field 'strategy.kw.biass'; "
       f"strategy 'badge' accepts {list(factory_kw('badge'))}"),
      ("--config.al.num_round=3",
       "error: --config.al.num_round: the config has no field 'al.num_round'")):
    res = run("--config", "configs/default.py:smoke", "--workdir", str(w),
              "--config.strategy.name=badge", flag)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1] == message, res.stderr
    assert "Traceback" not in res.stderr and not w.exists()
