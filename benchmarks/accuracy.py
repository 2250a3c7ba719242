"""Accuracy benchmark: strategies x seeds on one config; AUBC table, penalty matrix, curves.

  python benchmarks/accuracy.py --config configs/default.py --strategies all --seeds 3 \
      --out benchmarks/results/digits

Strategies other than the config's own keep only the config's strategy kw
entries they accept (e.g. configs/bald_mnist.py's num_samples for every MC
strategy). With --per_strategy the config file is loaded once per strategy
with the strategy's name as its argument (configs/table_digits.py:NAME),
then the command line's --config.x=y overrides are applied to each
(--config.strategy.kw.K=V to those with a K; name such a strategy in the
--config argument, e.g. configs/table_digits.py:vaal, so the override parses).
Every (strategy, seed) run is an ordinary al_jax workdir under OUT/runs/,
so an interrupted benchmark resumes where it stopped. Writes OUT/curves.csv
(strategy, seed, round, num_labelled, accuracy), OUT/aubc.json,
OUT/learning_curves.png and OUT/table.md, and prints the table. Random is
always included.
"""

import csv
import functools
import importlib.util
import itertools
import os
import sys

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from al_jax import loop, metrics, report, strategies  # noqa: E402
from configs.default import strategy_kw  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Base config file.", lock_config=False)
_STRATEGIES = flags.DEFINE_list("strategies", ["all"], "Strategy names, or 'all' registered.")
_SKIP = flags.DEFINE_list("skip", [], "Strategy names to leave out (with 'all').")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per strategy (0..seeds-1).")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_PER_STRATEGY = flags.DEFINE_bool(
    "per_strategy", False, "Load --config once per strategy with the strategy name as its "
    "argument (for configs/table_*.py) instead of sharing one config.")
flags.mark_flags_as_required(["config", "out"])


def penalty_matrix(curves: dict, alpha: float = 0.05) -> tuple[list[str], np.ndarray]:
  """BADGE-style pairwise penalty: P[i, j] = fraction of acquisition rounds in
  which strategy i beats j significantly (paired two-sided t-test over seeds
  at level alpha, mean difference > 0). curves: {name: [seeds, rounds]}."""
  names = sorted(curves)
  n = len(names)
  p = np.zeros((n, n))
  rounds = min(c.shape[1] for c in curves.values())
  for (a, i), (b, j) in itertools.permutations(enumerate(names), 2):
    seeds = min(len(curves[i]), len(curves[j]))
    wins = 0
    for r in range(1, rounds):  # round 0 is the shared initial set
      d = curves[i][:seeds, r] - curves[j][:seeds, r]
      if seeds > 1 and d.std() > 0:
        t, pv = stats.ttest_rel(curves[i][:seeds, r], curves[j][:seeds, r])
        wins += (pv < alpha) and (t > 0)
    p[a, b] = wins / max(rounds - 1, 1)
  return names, p


def kw_for(name: str, base_name: str, base_kw: dict) -> dict:
  """The strategy kw for `name` when the base config was written for `base_name`.

  The base config's own strategy keeps its kw. Another strategy keeps only
  the entries its factory accepts (so one Bayesian config's num_samples
  carries over to every MC strategy, and entropy gets none), defaults
  otherwise.
  """
  if name == base_name:
    return dict(base_kw)
  accepted = strategy_kw(name)
  # Each MC strategy keeps its own mask scheme (BatchBALD shared, the others
  # per example): one config's `mask` must not carry over.
  return {k: v for k, v in base_kw.items() if k in accepted and k != "mask"}


@functools.cache
def _config_module(path: str):
  """The config file at `path` as a module, executed once per benchmark."""
  spec = importlib.util.spec_from_file_location("per_strategy_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def config_for(name: str, seed: int):
  """The run config of (strategy, seed)."""
  if _PER_STRATEGY.value:
    # 'path.py:smoke' -> path.py loaded with 'NAME,smoke'; the overrides are
    # re-applied since each strategy gets a freshly built config.
    path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
    extra = [p for p in arg.split(",") if p and p not in strategies.STRATEGIES]
    c = _config_module(path).get_config(",".join([name] + extra))
    over = config_flags.get_override_values(flags.FLAGS["config"])
    # A strategy.kw override reaches the strategies that have that entry.
    c.update_from_flattened_dict({k: v for k, v in over.items() if not k.startswith(
        "strategy.kw.") or k.split(".")[2] in c.strategy.kw})
  else:
    c = _CONFIG.value.copy_and_resolve_references()
    c.strategy.kw = kw_for(name, c.strategy.name, c.strategy.kw.to_dict())
    c.strategy.name = name
  c.seed, c.progress = seed, False
  return c


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  names = list(strategies.STRATEGIES) if _STRATEGIES.value == ["all"] else list(_STRATEGIES.value)
  names = [n for n in names if n not in _SKIP.value]
  if "random" not in names:
    names.insert(0, "random")
  unknown = [n for n in names if n not in strategies.STRATEGIES]
  if unknown:
    sys.exit(f"error: unknown strategies {unknown}; known: {sorted(strategies.STRATEGIES)}")
  out = _OUT.value
  runs = []
  for name in names:
    for seed in range(_SEEDS.value):
      c = config_for(name, seed)
      w = os.path.join(out, "runs", f"{name}_{seed}")
      loop.run(c, w)
      runs.append(report.load_run(w))
  summary = report.summarise(runs)
  with open(os.path.join(out, "curves.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["strategy", "seed", "round", "num_labelled", "accuracy"])
    for r in runs:
      for i, (n, a) in enumerate(zip(r["num_labelled"], r["accuracy"])):
        wr.writerow([r["strategy"], r["seed"], i, n, f"{a:.6f}"])
  curves = {}
  for r in runs:
    curves.setdefault(r["strategy"], []).append(r["accuracy"])
  curves = {k: np.array([c[:min(map(len, v))] for c in v]) for k, v in curves.items()}
  pnames, pm = penalty_matrix(curves)
  lines = [report.table(summary), "",
           "Penalty matrix: row beats column significantly (paired t-test, p < 0.05) in this "
           "fraction of rounds.", "",
           "| | " + " | ".join(pnames) + " |", "|---" * (len(pnames) + 1) + "|"]
  for name, row in zip(pnames, pm):
    lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
  text = "\n".join(lines)
  print(text)
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write(text + "\n")
  metrics.write_json(os.path.join(out, "aubc.json"), summary)
  metrics.plot_curves(os.path.join(out, "learning_curves.png"),
                      {f"{k} ({v['aubc_mean']:.3f})": (v["num_labelled"], v["acc_mean"], v["acc_std"])
                       for k, v in summary.items()}, title=f"{_CONFIG.value.data.name}: test accuracy")


if __name__ == "__main__":
  app.run(main)
