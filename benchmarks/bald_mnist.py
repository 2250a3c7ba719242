"""Gal et al. (2017) MNIST comparison: acquired images to reach 90% / 95% test accuracy.

Runs configs/bald_mnist.py for each strategy and seed through `loop.run`
(resumable: rerunning continues unfinished runs) and prints a markdown table.

  # the reduced protocol of benchmarks/README.md (Bayesian section); about 17 min
  # per run on 2 CPU cores (38 rounds, ~2,400 training steps of 0.41 s), 12 runs:
  nohup nice -n 10 python benchmarks/bald_mnist.py --reduced > /tmp/bald_mnist.log 2>&1 &
  # the paper's protocol (100 rounds of 10, 50 epochs; a GPU job):
  python benchmarks/bald_mnist.py --workdir /tmp/bald_mnist_full
  # table only, from the finished runs:
  python benchmarks/bald_mnist.py --reduced --report_only

Runs live in benchmarks/results/bald_mnist/ by default; their metrics are
committed as they finish (checkpoints are git-ignored), so the table
accumulates across sessions.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

STRATEGIES = ("random", "bald", "bayesian_entropy", "variation_ratios")
LABELS = {"random": "Random", "bald": "BALD", "bayesian_entropy": "Max Entropy",
          "variation_ratios": "Variation Ratios"}
# Gal et al. (2017), Table 1: acquired images to 10% / 5% MNIST test error.
PAPER = {"random": (255, 835), "bald": (145, 335), "bayesian_entropy": (165, 355),
         "variation_ratios": (120, 295)}


def reduce_protocol(c, rounds):
  """The documented reduced protocol (benchmarks/README.md (Bayesian section))."""
  c.al.num_rounds = rounds
  c.al.subset_size = 500
  c.train.num_epochs = 30
  c.score.batch_size = 250
  if "num_samples" in c.strategy.kw:
    c.strategy.kw.num_samples = 10
  return c


def config_for(name, seed, reduced, rounds, data_path):
  from configs import bald_mnist
  c = bald_mnist.get_config(name)
  c.seed = seed
  c.progress = False
  if data_path:  # Other IDX files than the built-in mnist10k.
    c.data.name, c.data.path = "mnist_idx", data_path
  return reduce_protocol(c, rounds) if reduced else c


def acquired_to_reach(history, target, initial):
  """Acquired images (labels beyond the initial set) at the first round with acc >= target."""
  for h in history:
    if h["accuracy"] >= target:
      return h["num_labelled"] - initial
  return None


def read_history(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(l) for l in f if l.strip()]


def spread(vals):
  """(mean, sample standard deviation (ddof 1), 95% t-interval low, high) over seeds.

  Seeds are few (3 here), so the interval uses Student's t with n - 1
  degrees of freedom, not the normal 1.96; with one seed sd and the interval
  are NaN (no spread can be estimated from one run).
  """
  from scipy import stats
  v = np.asarray(vals, np.float64)
  mean = float(v.mean())
  if len(v) < 2:
    return mean, float("nan"), float("nan"), float("nan")
  sd = float(v.std(ddof=1))
  half = float(stats.t.ppf(0.975, len(v) - 1)) * sd / np.sqrt(len(v))
  return mean, sd, mean - half, mean + half


def fmt_aubc(vals):
  """'mean ± sd [lo, hi]': sd with ddof 1, [lo, hi] the 95% t-interval of the mean."""
  if not vals:
    return "—"
  mean, sd, lo, hi = spread(vals)
  if len(vals) < 2:
    return f"{mean:.4f} (1 seed)"
  return f"{mean:.4f} ± {sd:.4f} [{lo:.4f}, {hi:.4f}]"


def fmt(vals, max_acquired):
  got = [v for v in vals if v is not None]
  if not vals:
    return "—"
  # Sample sd (ddof 1); a single value has none.
  ms = lambda: (f"{np.mean(got):.0f} ± {np.std(got, ddof=1):.0f}" if len(got) > 1 else
                f"{got[0]:.0f}")
  if len(got) < len(vals):
    return (f"> {max_acquired} ({len(vals) - len(got)}/{len(vals)} seeds)" if not got else
            f"{ms()}; {len(vals) - len(got)} seed(s) > {max_acquired}")
  return f"{ms()} ({', '.join(str(v) for v in got)})"


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--workdir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "results", "bald_mnist"))
  ap.add_argument("--strategies", default=",".join(STRATEGIES))
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--reduced", action="store_true")
  ap.add_argument("--rounds", type=int, default=38, help="rounds of the reduced protocol")
  ap.add_argument("--data_path", default=None)
  ap.add_argument("--report_only", action="store_true")
  args = ap.parse_args()
  names = args.strategies.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  if not args.report_only:
    from al_jax import loop
    # Seed-major order: a partial run still compares every strategy.
    for seed in seeds:
      for name in names:
        wd = os.path.join(args.workdir, f"{name}_s{seed}")
        cfg = config_for(name, seed, args.reduced, args.rounds, args.data_path)
        if len(read_history(wd)) == cfg.al.num_rounds + 1:
          continue
        s = loop.run(cfg, wd)
        print(f"done {name} seed {seed}: AUBC {s['aubc']:.4f} final {s['final_accuracy']:.4f}",
              flush=True)
  from al_jax import metrics
  rows = []
  for name in names:
    cfg = config_for(name, seeds[0], args.reduced, args.rounds, args.data_path)
    initial = int(cfg.al.initial_size)
    max_acq = int(cfg.al.num_rounds) * int(cfg.al.query_size)
    r90, r95, finals, aubcs, done = [], [], [], [], 0
    for seed in seeds:
      hist = read_history(os.path.join(args.workdir, f"{name}_s{seed}"))
      if len(hist) < int(cfg.al.num_rounds) + 1:
        continue  # Unfinished runs are left out of the table.
      done += 1
      r90.append(acquired_to_reach(hist, 0.90, initial))
      r95.append(acquired_to_reach(hist, 0.95, initial))
      finals.append(hist[-1]["accuracy"])
      aubcs.append(metrics.aubc([h["num_labelled"] for h in hist], [h["accuracy"] for h in hist]))
    paper = "{} / {}".format(*PAPER[name]) if name in PAPER else "—"
    rows.append(f"| {LABELS.get(name, name)} | {done} | {fmt(r90, max_acq)} | "
                f"{fmt(r95, max_acq)} | {paper} | "
                f"{(f'{np.mean(finals):.3f}' if finals else '—')} | {fmt_aubc(aubcs)} |")
  print("| Strategy | seeds done | acquired to 90% (mean ± sd, per seed) | "
        "acquired to 95% | paper: 90% / 95% | final accuracy | AUBC (mean ± sd [95% CI]) |")
  print("|---|---|---|---|---|---|---|")
  print("\n".join(rows))
  print("\nsd: sample standard deviation over seeds (ddof 1); CI: 95% Student-t interval of the "
        "mean (n - 1 degrees of freedom).")


if __name__ == "__main__":
  main()
