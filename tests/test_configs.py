"""Config files: every keyword listed, one argument convention, overrides resolved."""

import glob
import importlib
import os
import re
import subprocess

import ml_collections
import pytest

from al_jax import config_utils
from al_jax.strategies import STRATEGIES

ROOT = os.path.join(os.path.dirname(__file__), "..")
FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not p.endswith(("__init__.py", "common.py")))


def _accepted(module):
  """The strategy names a config file takes as its argument."""
  out = []
  for name in STRATEGIES:
    try:
      module.get_config(name)
    except ValueError:
      continue
    out.append(name)
  return out


@pytest.mark.parametrize("stem", FILES)
def test_every_config_lists_every_keyword_of_its_strategy(stem):
  module = importlib.import_module(f"configs.{stem}")
  for arg in [None, "smoke"] + _accepted(module):
    c = module.get_config(arg) if arg else module.get_config()
    assert set(c.strategy.kw) == set(config_utils.factory_kw(c.strategy.name)), (stem, arg)


def test_protocol_files_take_every_strategy_and_single_files_their_own():
  from configs import bald_mnist, common, coreset_cifar10, digits, mnist10k, vaal_cifar10
  assert _accepted(digits) == _accepted(mnist10k) == list(STRATEGIES)
  assert _accepted(bald_mnist) == [n for n in STRATEGIES if n in common.BAYESIAN + ("random",)]
  assert _accepted(coreset_cifar10) == [n for n in STRATEGIES if n in common.DIVERSITY]
  assert _accepted(vaal_cifar10) == ["vaal"]


@pytest.mark.parametrize("arg,name,flags", [
    ("badge,smoke,table", "badge", {"smoke", "table"}), ("table,badge", "badge", {"table"}),
    ("smoke", "entropy", {"smoke"}), (None, "entropy", set())])
def test_argument_parts_in_any_order(arg, name, flags):
  from configs import common
  assert common.parse(arg, STRATEGIES, "entropy", ("table",)) == (name, flags)


@pytest.mark.parametrize("arg", ["nope", "badge,margin", "badge,smoke,tabel"])
def test_bad_argument_is_one_error_naming_it(arg):
  from configs import digits
  with pytest.raises(ValueError, match=re.escape(repr(arg))):
    digits.get_config(arg)


def test_tuned_keyword_unknown_to_the_factory_fails():
  accepted = re.escape(str(list(config_utils.factory_kw("badge"))))
  with pytest.raises(ValueError, match=rf"strategy.kw.nope: strategy 'badge'.*{accepted}"):
    config_utils.strategy_kw("badge", nope=1)


def _file(name="entropy", **kw):
  return ml_collections.ConfigDict(dict(al=dict(num_rounds=3),
                                        strategy=dict(name=name, kw=kw)))


def test_resolve_keeps_the_files_kw_for_its_own_strategy():
  file_config = _file("bald", num_samples=7, samples_per_pass=None)
  config = _file("bald", num_samples=9, samples_per_pass=None)
  out = config_utils.resolve(config, file_config, {"strategy.kw.num_samples": 9})
  assert out.strategy.kw.to_dict() == {**config_utils.factory_kw("bald"), "num_samples": 9}


def test_resolve_rebuilds_kw_for_another_strategy():
  # The file's kw (bald's num_samples=7) is dropped; the command line's keyword stays.
  file_config = _file("bald", num_samples=7, samples_per_pass=None)
  config = _file("batchbald", num_samples=7, samples_per_pass=None, num_configs=10)
  out = config_utils.resolve(config, file_config, {"strategy.name": "batchbald",
                                                   "strategy.kw.num_configs": 10})
  assert out.strategy.kw.to_dict() == {**config_utils.factory_kw("batchbald"), "num_configs": 10}
  assert out.strategy.kw.num_samples == 20  # batchbald's default, not the file's 7


@pytest.mark.parametrize("overrides,message", [
    ({"strategy.name": "badge", "strategy.kw.biass": True},
     r"--config.strategy.kw.biass: the config has no field 'strategy.kw.biass'; "
     r"strategy 'badge' accepts \['bias', 'embedding', 'k', 'seed'\]"),
    ({"al.num_round": 1}, r"--config.al.num_round: the config has no field 'al.num_round'")])
def test_resolve_rejects_unknown_fields_and_keywords(overrides, message):
  config = _file(overrides.get("strategy.name", "entropy"), biass=True)
  with pytest.raises(ValueError, match=message):
    config_utils.resolve(config, _file(), overrides)


def test_none_default_keyword_takes_a_command_line_value():
  from configs import digits
  c = digits.get_config("bald")
  assert c.strategy.kw.get_type("samples_per_pass") is object  # any literal parses


def _tracked_text_files():
  out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
  return [p for p in out.split() if not p.startswith("benchmarks/results/")
          and not p.endswith((".gz", ".png"))]


def test_no_machine_paths_in_the_project():
  # Spelled in pieces so this file does not match itself.
  bad = re.compile("|".join(re.escape(a + b) for a, b in (
      ("/wo", "rk/"), ("../sha", "red"), ("/ho", "me/"), ("/Us", "ers/"))))
  hits = [p for p in _tracked_text_files()
          if bad.search(open(os.path.join(ROOT, p), errors="replace").read())]
  assert hits == []


def test_configs_import_only_common_and_the_library():
  for path in glob.glob(os.path.join(ROOT, "configs", "*.py")):
    for line in open(path):
      m = re.match(r"\s*(?:from|import) (configs\.\w+|configs\b)", line)
      assert m is None or m.group(1) == "configs.common", (path, line)


@pytest.mark.parametrize("value,ok", [
    (None, True), ({"name": "multistep", "milestones": (3,), "unit": "epochs"}, True),
    ({"name": "multistep", "unit": "weeks"}, False), ({"name": "linear"}, False),
    ({"name": "cosine", "warmup": -1}, False)])
def test_auxiliary_schedule_keywords_are_validated(value, ok):
  from al_jax import validate
  c = importlib.import_module("configs.ll4al_cifar10").get_config(None)
  c.strategy.kw.module_schedule = value
  if ok:
    validate.check(c)
  else:
    with pytest.raises(ValueError, match=r"strategy.kw.module_schedule must be None or a schedule"):
      validate.check(c)
