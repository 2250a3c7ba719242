"""Compares finished runs: AUBC table and learning curves.

  python -m al_jax.report /tmp/runs/* --out /tmp/report

Runs are grouped by strategy name (from each workdir's config.json); seeds of
one strategy are averaged per round. Prints a Markdown table and writes
`learning_curves.png` and `aubc.json` to --out (default: the current folder).
"""

import json
import os
import sys
from collections import defaultdict

import numpy as np
from absl import app, flags

from al_jax import metrics


def load_run(workdir: str) -> dict:
  """{strategy, seed, num_labelled, accuracy} of one finished or partial run."""
  cfg_path = os.path.join(workdir, "config.json")
  recs = metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  if not os.path.exists(cfg_path) or not recs:
    raise FileNotFoundError(f"{workdir} holds no run (config.json and metrics.jsonl needed)")
  with open(cfg_path) as f:
    cfg = json.load(f)
  return {"strategy": cfg["strategy"]["name"], "seed": cfg["seed"], "workdir": workdir,
          "num_labelled": [r["num_labelled"] for r in recs],
          "accuracy": [r["accuracy"] for r in recs]}


def summarise(runs: list[dict]) -> dict:
  """Per strategy: AUBC mean/std over runs and the mean/std curve."""
  groups = defaultdict(list)
  for r in runs:
    groups[r["strategy"]].append(r)
  out = {}
  for name, rs in sorted(groups.items()):
    n = min(len(r["accuracy"]) for r in rs)  # partial runs: common prefix
    acc = np.array([r["accuracy"][:n] for r in rs])
    aubcs = [metrics.aubc(r["num_labelled"][:n], r["accuracy"][:n]) for r in rs]
    out[name] = {"aubc_mean": float(np.mean(aubcs)), "aubc_std": float(np.std(aubcs)),
                 "runs": len(rs), "rounds": n, "num_labelled": rs[0]["num_labelled"][:n],
                 "acc_mean": acc.mean(0).tolist(), "acc_std": acc.std(0).tolist(),
                 "final_mean": float(acc[:, -1].mean())}
  return out


def table(summary: dict) -> str:
  lines = ["| strategy | runs | rounds | AUBC (mean ± std) | final accuracy |",
           "|---|---|---|---|---|"]
  for name, s in sorted(summary.items(), key=lambda kv: -kv[1]["aubc_mean"]):
    lines.append(f"| {name} | {s['runs']} | {s['rounds']} | {s['aubc_mean']:.4f} ± "
                 f"{s['aubc_std']:.4f} | {s['final_mean']:.4f} |")
  return "\n".join(lines)


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    sys.exit("usage: python -m al_jax.report WORKDIR [WORKDIR ...] [--out DIR]")
  try:
    summary = summarise([load_run(w) for w in workdirs])
  except FileNotFoundError as e:
    sys.exit(f"error: {e}")
  print(table(summary))
  out = flags.FLAGS.out
  os.makedirs(out, exist_ok=True)
  metrics.write_json(os.path.join(out, "aubc.json"), summary)
  metrics.plot_curves(os.path.join(out, "learning_curves.png"),
                      {f"{k} ({v['aubc_mean']:.3f})": (v["num_labelled"], v["acc_mean"], v["acc_std"])
                       for k, v in summary.items()}, title="test accuracy (mean ± std over runs)")


if __name__ == "__main__":
  # Defined here, not at import: benchmarks import this module with flags of their own.
  flags.DEFINE_string("out", ".", "Folder for learning_curves.png and aubc.json.")
  app.run(main)
