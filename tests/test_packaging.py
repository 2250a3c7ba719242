"""pyproject.toml agrees with the requirements files; the `al-jax` command dispatches."""

import os
import re
import subprocess
import sys
import tomllib

import pytest

from al_jax import cli, metrics

ROOT = os.path.join(os.path.dirname(__file__), "..")


def requirement_lines(path):
  """Requirement specifiers of a requirements file (no comments, no -r)."""
  with open(os.path.join(ROOT, path)) as f:
    lines = [line.split("#")[0].strip() for line in f]
  return [line for line in lines if line and not line.startswith("-")]


def norm(spec):
  """PEP 503 name normalisation, specifier kept: 'ml_collections>=1' -> 'ml-collections>=1'."""
  name, rest = re.match(r"([A-Za-z0-9._-]+)(.*)", spec.replace(" ", "")).groups()
  return re.sub(r"[-_.]+", "-", name).lower() + rest


@pytest.fixture(scope="module")
def project():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)["project"]


def test_requirements_txt_is_the_runtime_plus_test_dependencies(project):
  want = sorted(map(norm, project["dependencies"] + project["optional-dependencies"]["test"]))
  assert sorted(map(norm, requirement_lines("requirements.txt"))) == want


def test_extras_match_their_requirement_files(project):
  extras = project["optional-dependencies"]
  assert sorted(map(norm, requirement_lines("requirements-prepare.txt"))) == sorted(
      map(norm, extras["prepare"]))
  assert sorted(map(norm, requirement_lines("benchmarks/requirements-speed.txt"))) == sorted(
      map(norm, extras["benchmarks"]))


def test_names_and_entry_point(project):
  assert project["name"] == "al-jax"
  assert project["scripts"]["al-jax"] == "al_jax.cli:main"
  assert set(cli.COMMANDS) == {"run", "report"}


def test_cli_runs_report_and_refuses_unknown_commands(tmp_path):
  run = tmp_path / "r0"
  run.mkdir()
  metrics.write_json(str(run / "config.json"), {"strategy": {"name": "margin"}, "seed": 0,
                                                "data": {"name": "digits"}, "model_name": "mlp"})
  metrics.write_jsonl(str(run / "metrics.jsonl"), [{"round": 0, "num_labelled": 10,
                                                     "accuracy": 0.5}])
  cmd = [sys.executable, "-c", "from al_jax.cli import main; main()"]
  ok = subprocess.run(cmd + ["report", str(run), "--out", str(tmp_path / "out")], cwd=ROOT,
                      capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr
  assert "| margin | digits | mlp | 1 | 1 | 0.5000" in ok.stdout
  assert (tmp_path / "out" / "aubc.csv").exists()
  bad = subprocess.run(cmd + ["fit"], cwd=ROOT, capture_output=True, text=True)
  assert bad.returncode != 0 and "unknown command 'fit'" in bad.stderr
  missing = subprocess.run(cmd + ["run", "--workdir", str(tmp_path / "w")], cwd=ROOT,
                           capture_output=True, text=True)
  assert missing.returncode != 0 and "--config" in missing.stderr
