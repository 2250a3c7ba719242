"""Accuracy benchmark: strategies x seeds on one protocol; AUBC table, penalty matrix, curves.

  python benchmarks/accuracy.py --config configs/digits.py:table --strategies all --seeds 3 \
      --out benchmarks/results/table_digits

The --config file is a protocol file (configs/digits.py, configs/mnist10k.py,
configs/bald_mnist.py, ...): it is built once per strategy with the strategy's
name as its argument, followed by the flags given after ':' (e.g.
configs/digits.py:table,smoke -> 'NAME,table,smoke'). The command line's
--config.x=y overrides then apply to each run; --config.strategy.kw.K=V
reaches the strategies that take a keyword K (and is an error if none of
them does). The seeds of a strategy run as one program (al.num_seeds, al_jax/seeds.py)
in OUT/runs/NAME/, each seed an ordinary al_jax run folder OUT/runs/NAME/seed_<s>/
(with --seeds 1, or --sequential: one process-local run per seed in OUT/runs/NAME_<s>/),
so an interrupted benchmark resumes where it stopped. Writes OUT/curves.csv
(strategy, seed, round, num_labelled, accuracy), OUT/aubc.json,
OUT/learning_curves.png and OUT/table.md, and prints the table. Random is
always included.
"""

import csv
import functools
import itertools
import json
import os
import sys

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from al_jax import config_utils, loop, metrics, report, strategies  # noqa: E402

# New attributes are accepted so a strategy.kw override parses whichever strategy
# the --config argument builds; config_for checks every override.
_CONFIG = config_flags.DEFINE_config_file("config", None, "Protocol config file.",
                                          lock_config=False, accept_new_attributes=True)
_STRATEGIES = flags.DEFINE_list("strategies", ["all"], "Strategy names, or 'all' registered.")
_SKIP = flags.DEFINE_list("skip", [], "Strategy names to leave out (with 'all').")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per strategy (0..seeds-1), run side by side "
                              "as one program (al.num_seeds).")
_SEQUENTIAL = flags.DEFINE_bool("sequential", False, "Run the seeds one after another instead "
                                "(one single run each).")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_COMPARE = flags.DEFINE_string("compare", None, "An earlier output folder (its aubc.json): adds a "
                               "table of its AUBC means and whether each lies inside the new "
                               "95% interval.")
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


@functools.cache
def _file_config(spec: str):
  return config_utils.load_file(spec)


def against_random(runs: list[dict]) -> list[str]:
  """Markdown lines: each strategy's AUBC minus random's on the same seed (same
  split and initial labels), seeds ahead, and the paired t-test's p-value."""
  aubc = {}
  for r in runs:
    aubc.setdefault(r["strategy"], {})[r["seed"]] = metrics.aubc(r["num_labelled"], r["accuracy"])
  base = aubc.get("random", {})
  lines = ["AUBC against random on the same seed (paired over the seeds both ran).", "",
           "| strategy | seeds | mean difference | seeds ahead | paired t-test p |",
           "|---|---|---|---|---|"]
  rows = []
  for name, per_seed in aubc.items():
    seeds = sorted(set(per_seed) & set(base))
    if name == "random" or not seeds:
      continue
    a = np.array([per_seed[k] for k in seeds])
    b = np.array([base[k] for k in seeds])
    p = stats.ttest_rel(a, b).pvalue if len(seeds) > 1 and np.std(a - b) > 0 else float("nan")
    rows.append((float(np.mean(a - b)), f"| {name} | {len(seeds)} | {np.mean(a - b):+.4f} | "
                 f"{int(np.sum(a > b))}/{len(seeds)} | {p:.2g} |"))
  return lines + [row for _, row in sorted(rows, key=lambda t: -t[0])]


def comparison(summary: dict, old_path: str) -> list[str]:
  """Markdown lines: each strategy's new AUBC (mean, 95% CI, runs) against the
  earlier table's mean and run count, and whether that mean lies inside the CI."""
  with open(os.path.join(old_path, "aubc.json")) as f:
    old = json.load(f)
  lines = [f"Against {old_path}: is the earlier mean inside the new 95% interval?", "",
           "| strategy | runs | AUBC (mean) | 95% CI | runs before | mean before | inside the CI |",
           "|---|---|---|---|---|---|---|"]
  # Rows match by label, else by strategy name (a label carries the settings
  # that differ between rows, e.g. "isal [al.validation_size=5]").
  by_strategy = {}
  for k, v in old.items():
    by_strategy.setdefault(v.get("strategy", k), []).append(v)
  for name, v in sorted(summary.items(), key=lambda kv: -kv[1]["aubc_mean"]):
    lo, hi = v["aubc_ci95"]
    same = by_strategy.get(v.get("strategy", name), [])
    before = old.get(name) or (same[0] if len(same) == 1 else None)
    if before is None:
      lines.append(f"| {name} | {v['runs']} | {v['aubc_mean']:.4f} | [{lo:.4f}, {hi:.4f}] | - | - | - |")
      continue
    inside = "yes" if lo <= before["aubc_mean"] <= hi else "**no**"
    lines.append(f"| {name} | {v['runs']} | {v['aubc_mean']:.4f} | [{lo:.4f}, {hi:.4f}] | "
                 f"{before.get('runs', '?')} | {before['aubc_mean']:.4f} | {inside} |")
  return lines


def config_for(name: str, seed: int):
  """The run config of (strategy, seed): the protocol file built for `name`, plus overrides."""
  path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
  extra = [p for p in arg.split(",") if p and p not in strategies.STRATEGIES]
  spec = f"{path}:{','.join([name] + extra)}"
  file_config = _file_config(spec)
  over = config_flags.get_override_values(flags.FLAGS["config"])
  try:
    config_utils.check_fields(file_config, over)
  except ValueError as e:
    sys.exit(f"error: {e}")
  c = file_config.copy_and_resolve_references()
  own = config_utils.factory_kw(name)
  # A strategy.kw override reaches the strategies that take that keyword.
  c.update_from_flattened_dict({k: v for k, v in over.items() if not k.startswith(
      "strategy.kw.") or k.split(".")[2] in own})
  c.seed, c.progress = seed, False
  return c


def run_strategy(name: str, num_seeds: int, sequential: bool, out: str) -> list[str]:
  """Runs seeds 0..num_seeds-1 of strategy `name`; returns the run folders, one per seed."""
  if sequential or num_seeds == 1:
    dirs = []
    for seed in range(num_seeds):
      dirs.append(os.path.join(out, "runs", f"{name}_{seed}"))
      loop.run(config_for(name, seed), dirs[-1])
    return dirs
  c = config_for(name, 0)
  c.al.num_seeds = num_seeds
  w = os.path.join(out, "runs", name)
  loop.run(c, w)
  return [os.path.join(w, f"seed_{seed}") for seed in range(num_seeds)]


def _check_kw_overrides(names: list[str]) -> None:
  """Fails on a strategy.kw override that none of the benchmarked strategies takes."""
  over = config_flags.get_override_values(flags.FLAGS["config"])
  taken = set().union(*(config_utils.factory_kw(n) for n in names))
  for k in over:
    if k.startswith("strategy.kw.") and k.split(".")[2] not in taken:
      sys.exit(f"error: --config.{k}: none of {names} takes a keyword '{k.split('.')[2]}'")


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
  _check_kw_overrides(names)
  out = _OUT.value
  runs = []
  for name in names:
    runs += [report.load_run(w) for w in run_strategy(name, _SEEDS.value, _SEQUENTIAL.value, out)]
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
  lines += [""] + against_random(runs)
  if _COMPARE.value:
    lines += [""] + comparison(summary, _COMPARE.value)
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
