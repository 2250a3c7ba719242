"""The round loop end to end: every config, resume, bad input, devices."""

import glob
import importlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from al_jax import loop, metrics
from al_jax.strategies import STRATEGIES
from configs.common import BAYESIAN
from tests.helpers import run_killed_at_check, set_fields

ROOT = os.path.join(os.path.dirname(__file__), "..")
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not p.endswith(("__init__.py", "common.py")))
# The protocol files run with these strategies too (those with tuned values,
# one per family otherwise); `name:arg` is configs/name.py:arg,smoke.
PROTOCOL_RUNS = (
    [f"digits:{s}" for s in ("alfa_mix", "badge", "bald", "core_gcn", "coreset", "dfal", "egl",
                             "el2n", "forgetting", "grand", "isal", "ll4al", "sraal", "ta_vaal",
                             "uncertain_gcn", "vaal", "waal")]
    + [f"mnist10k:{s}" for s in ("alfa_mix", "badge", "core_gcn", "coreset", "dfal", "egl",
                                 "el2n", "forgetting", "grand", "isal", "ll4al", "sraal",
                                 "ta_vaal", "uncertain_gcn", "vaal", "waal")]
    + ["digits:entropy,table", "mnist10k:entropy,table"])


def get(name="default", **over):
  name, _, arg = name.partition(":")
  c = importlib.import_module(f"configs.{name}").get_config(",".join(filter(None, [arg, "smoke"])))
  return set_fields(c, over)


def selected(workdir):
  # Round -1 is the initial labelled set, not a selection.
  return [r["ids"] for r in metrics.read_jsonl(os.path.join(workdir, "selected.jsonl"))
          if r["round"] >= 0]


# CIFAR-10 configs differ from their digits / MNIST-10k siblings (smoke-run
# by default) only in the ResNet backbone and the protocol; three of them
# keep that path in the default run, the rest run with `pytest -m slow`
# (each costs 30-60 s of CPU, mostly compiling a ResNet-18).
CIFAR_DEFAULT = ("badge_cifar10", "coreset_cifar10", "margin_cifar10")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n.endswith("_cifar10") and n not in CIFAR_DEFAULT
    else n for n in CONFIGS + PROTOCOL_RUNS])
def test_every_config_runs_smoke(name, tmp_path):
  c = get(name)
  # TFDS configs read mock data: no network, same code path.
  with tfds.testing.mock_data(num_examples=64):
    summary = loop.run(c, str(tmp_path))
  recs = metrics.read_jsonl(str(tmp_path / "metrics.jsonl"))
  assert [r["round"] for r in recs] == list(range(c.al.num_rounds + 1))
  assert [r["num_labelled"] for r in recs] == [
      c.al.initial_size + r * c.al.query_size for r in range(c.al.num_rounds + 1)]
  ids = sum(selected(str(tmp_path)), [])
  assert len(ids) == len(set(ids)) == c.al.num_rounds * c.al.query_size
  assert 0.0 <= summary["aubc"] <= 1.0
  for f in ("summary.json", "learning_curve.png", "config.json"):
    assert (tmp_path / f).exists()


def test_selected_ids_are_new_valid_and_reproducible(tmp_path):
  a = loop.run(get(), str(tmp_path / "a"))
  b = loop.run(get(), str(tmp_path / "b"))
  assert a == {**b}
  sel = selected(str(tmp_path / "a"))
  assert sel == selected(str(tmp_path / "b"))
  other = loop.run(get(seed=1), str(tmp_path / "c"))
  assert selected(str(tmp_path / "c")) != sel
  del other


@pytest.mark.parametrize("warm", [False, True])
def test_resume_after_a_kill_gives_the_same_ids(tmp_path, monkeypatch, warm):
  _kill_resume_matches_uninterrupted(get(**{"al.num_rounds": 4, "al.warm_start": warm}),
                                     tmp_path, monkeypatch)


def test_warm_ll4al_resume_continues_the_loss_module(tmp_path, monkeypatch):
  # The loss module is carried across rounds (warm start) and checkpointed with
  # the backbone; a resume that restarted it would rank the pool differently.
  _kill_resume_matches_uninterrupted(
      get("digits:ll4al", **{"al.num_rounds": 3, "al.warm_start": True}), tmp_path, monkeypatch)


def _kill_resume_matches_uninterrupted(c, tmp_path, monkeypatch):
  full = str(tmp_path / "full")
  loop.run(c, full)

  killed = str(tmp_path / "killed")
  # As if killed mid-round 2 (rounds 0, 1 are checkpointed).
  run_killed_at_check(monkeypatch, lambda: loop.run(c, killed), 3)
  assert len(selected(killed)) == 2
  loop.run(c, killed)  # the same command again
  assert selected(killed) == selected(full)
  m_full = metrics.read_jsonl(os.path.join(full, "metrics.jsonl"))
  m_res = metrics.read_jsonl(os.path.join(killed, "metrics.jsonl"))
  assert [r["round"] for r in m_res] == list(range(c.al.num_rounds + 1))
  np.testing.assert_allclose([r["accuracy"] for r in m_res], [r["accuracy"] for r in m_full])


def test_finished_run_is_not_redone_and_other_config_refused(tmp_path):
  w = str(tmp_path / "w")
  loop.run(get(), w)
  before = selected(w)
  loop.run(get(), w)  # nothing left to do: same outputs
  assert selected(w) == before
  with pytest.raises(ValueError, match="different config.*strategy.name"):
    loop.run(get(**{"strategy.name": "margin"}), w)


@pytest.mark.parametrize("override,message", [
    ({"strategy.name": "nope"}, "Unknown strategy 'nope'"),
    ({"al.query_size": 500}, r"al.query_size \(500\).*exceeds the pool of 256"),
    ({"al.initial_size": 0}, r"al.initial_size must be an integer >= 1, got 0"),
    ({"data.name": "imagenet_xxl"}, "Unknown dataset 'imagenet_xxl'"),
    ({"model_name": "gpt"}, "Unknown model 'gpt'"),
    ({"al.subset_size": 3}, r"al.subset_size \(3\) must be 0"),
    ({"train.optimizer": "adagrad2"}, "Unknown train.optimizer 'adagrad2'"),
])
def test_bad_config_is_one_clear_error_and_writes_nothing(tmp_path, override, message):
  w = tmp_path / "w"
  with pytest.raises(ValueError, match=message):
    loop.run(get(**override), str(w))
  assert not w.exists()


def test_missing_dataset_writes_nothing(tmp_path):
  w = tmp_path / "w"
  with pytest.raises(FileNotFoundError, match="'cifar10'"):
    loop.run(get("margin_cifar10", **{"data.data_dir": str(tmp_path / "tfds")}), str(w))
  assert not w.exists()


# The VAAL family's factory defaults (500 steps, 512-wide discriminator) take
# minutes on CPU; the device check needs only a few steps. At full length
# TA-VAAL's in-select training amplifies the last-bit differences of
# data-parallel training into a different tail of the batch (README,
# "Scaling out"); at this length it selects the same ids.
SMALL_KW = {s: {"strategy.kw": {"num_steps": 10, "disc_hidden": (16,)}}
            for s in ("vaal", "sraal", "ta_vaal")}


# The default run checks one strategy per selection mechanism (top-k, MC
# dropout, k-center, k-means++, host-side clustering, a training extension,
# in-select VAE training); `pytest -m slow` checks every registered strategy.
DEVICE_DEFAULT = ("random", "entropy", "bald", "coreset", "badge", "typiclust", "forgetting",
                  "vaal")


def _device_param(s):
  return pytest.param(s, marks=[] if s in DEVICE_DEFAULT else [pytest.mark.slow])


@pytest.mark.parametrize("strategy", [_device_param(s) for s in sorted(STRATEGIES)])
def test_one_device_and_eight_devices_select_the_same_ids(tmp_path, devices, strategy):
  del devices
  runs = {}
  for d in (1, 8):
    w = str(tmp_path / f"d{d}")
    over = {"mesh": [("data", d)], "strategy.name": strategy}
    if strategy in BAYESIAN:  # K distinct dropout networks; without dropout
      over["model.dropout"] = 0.25  # BALD is 0 everywhere and rounding picks the ids.
    over.update(SMALL_KW.get(strategy, {}))
    loop.run(get(**over), w)
    runs[d] = selected(w)
  assert runs[1] == runs[8]


def test_candidate_subset_mode(tmp_path):
  c = get(**{"al.subset_size": 40})
  loop.run(c, str(tmp_path))
  ids = sum(selected(str(tmp_path)), [])
  assert len(ids) == len(set(ids)) == 16


def test_candidate_rows_are_fixed_size_and_hold_all_labelled():
  import jax
  valid = np.arange(20) < 18
  labelled = np.zeros(20, bool)
  labelled[[1, 5, 7]] = True
  pos, cvalid = loop.candidate_rows(jax.random.key(0), labelled, valid, 6, 10, 8)
  assert len(pos) == 16 and cvalid.sum() == 9
  real = pos[cvalid]
  assert set([1, 5, 7]) <= set(real) and len(set(real)) == 9 and valid[real].all()
  assert (~labelled[real]).sum() == 6


def test_initial_balanced_set():
  y = np.repeat(np.arange(4), 10)
  mask = loop.initial_labelled(__import__("jax").random.key(0), y, np.ones(40, bool), 8, True)
  np.testing.assert_array_equal(np.bincount(y[mask]), [2, 2, 2, 2])
