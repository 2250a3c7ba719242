"""Compares runs: AUBC table (Markdown + CSV) and learning curves.

  python -m al_jax.report /tmp/runs/* --out /tmp/report
  al-jax report /tmp/runs/* --out /tmp/report

One row per experiment: runs are grouped by dataset, model, strategy and
every other config field that differs between the runs (only the seed is
averaged over). Each row names the run folders that went into it. Runs that
are unfinished (fewer rounds than their config asks for), diverged
(non-finite metrics) or duplicates (the same config and seed as another run,
or the same folder twice) are listed under the table and never averaged.
Writes `table.md`, `aubc.csv`, `aubc.json` and one learning-curve plot per
dataset (`learning_curves.png`, or `learning_curves_<dataset>.png` when the
runs span several datasets) to --out (default: the current folder).
"""

import csv
import io
import json
import math
import os
import sys
from collections import defaultdict

import numpy as np
from absl import app, flags

from al_jax import metrics

# Fields that do not change what a run computes: runs differing only here
# are the same experiment (and duplicates when their seeds agree too).
# al.num_seeds / al.seed_map: each seed of a parallel run (workdir/seed_<s>/)
# is one run of its seed, like a single run's workdir.
_IGNORED = ("seed", "progress", "ckpt.", "al.num_seeds", "al.seed_map")
# Shown as their own columns.
_COLUMNS = {"data.name": "dataset", "model_name": "model", "strategy.name": "strategy"}


def _flat(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, list) else v
  return out


def _ignored(key: str) -> bool:
  return any(key == p or (p.endswith(".") and key.startswith(p)) for p in _IGNORED)


def _status(cfg: dict, recs: list[dict]) -> str:
  """'finished', 'unfinished' or 'diverged' from the config and metrics."""
  for r in recs:
    for k in ("accuracy", "nll", "train_loss"):
      v = r.get(k)
      if isinstance(v, (int, float)) and not math.isfinite(v):
        return "diverged"
    if r.get("accuracy") is None:
      return "diverged"
  rounds = cfg.get("al", {}).get("num_rounds")
  if rounds is not None and len(recs) < int(rounds) + 1:
    return "unfinished"
  return "finished"


def load_run(workdir: str) -> dict:
  """One run folder (finished or not).

  Returns:
    {strategy, seed, dataset, model, workdir, config (flat), status,
    num_labelled, accuracy}.
  Raises:
    FileNotFoundError: the folder holds no config.json or no metrics.
  """
  cfg_path = os.path.join(workdir, "config.json")
  recs = metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  if not os.path.exists(cfg_path) or not recs:
    raise FileNotFoundError(f"{workdir} holds no run (config.json and metrics.jsonl needed)")
  with open(cfg_path) as f:
    cfg = json.load(f)
  flat = _flat(cfg)
  return {"strategy": flat.get("strategy.name"), "seed": flat.get("seed"),
          "dataset": flat.get("data.name", "?"), "model": flat.get("model_name", "?"),
          "workdir": workdir, "config": flat, "status": _status(cfg, recs),
          "num_labelled": [r.get("num_labelled") for r in recs],
          "accuracy": [r.get("accuracy") for r in recs]}


def _settings_keys(runs: list[dict]) -> list[str]:
  """Config fields (besides the columns and the seed) that tell groups apart.

  A strategy's own keywords (strategy.kw.*) naturally differ between
  strategies; they are shown only when they differ between runs of the same
  strategy.
  """
  keys = set().union(*(r["config"] for r in runs))
  out = []
  for k in sorted(keys):
    if _ignored(k) or k in _COLUMNS:
      continue
    if k.startswith("strategy.kw."):
      by_strategy = defaultdict(set)
      for r in runs:
        by_strategy[r["strategy"]].add(json.dumps(r["config"].get(k)))
      if any(len(v) > 1 for v in by_strategy.values()):
        out.append(k)
    elif len({json.dumps(r["config"].get(k)) for r in runs}) > 1:
      out.append(k)
  return out


def _experiment(run: dict) -> str:
  """The run's config without the ignored fields: equal = same experiment."""
  return json.dumps({k: v for k, v in run["config"].items() if not _ignored(k)}, sort_keys=True)


def summarise(runs: list[dict]) -> dict:
  """Groups runs into experiments and averages the usable runs of each.

  Args:
    runs: `load_run` results.
  Returns:
    {row label: {dataset, model, strategy, settings, runs, seeds, workdirs,
    excluded [(workdir, reason)], rounds, num_labelled, acc_mean, acc_std,
    aubc_mean, aubc_std, aubc_ci95, final_mean}}: standard deviations are
    the sample ones (ddof=1, 0 for one run), aubc_ci95 the 95% t-interval
    [low, high] of the mean AUBC over seeds (NaN for one run); the label is the strategy name,
    followed by the differing settings when there are any, and by the
    dataset / model when the runs span several. AUBC fields are NaN for an
    experiment with no usable run.
  """
  settings = _settings_keys(runs)
  multi = {col: len({r[col] for r in runs}) > 1 for col in ("dataset", "model")}
  groups = defaultdict(list)
  for r in runs:
    groups[_experiment(r)].append(r)
  out = {}
  for members in groups.values():
    members = sorted(members, key=lambda r: r["workdir"])
    first = members[0]
    setting = ", ".join(f"{k}={first['config'][k]}" for k in settings if k in first["config"])
    label = " ".join(
        [str(first["strategy"])] + [f"[{setting}]"] * bool(setting) +
        [f"({', '.join(str(first[c]) for c in ('dataset', 'model') if multi[c])})"] *
        any(multi.values()))
    used, excluded, seen = [], [], {}
    for r in members:
      real = os.path.realpath(r["workdir"])
      if real in seen:
        excluded.append((r["workdir"], f"duplicate: {seen[real]} listed twice"))
      elif r["status"] != "finished":
        excluded.append((r["workdir"], r["status"]))
      elif any(u["seed"] == r["seed"] for u in used):
        twin = next(u for u in used if u["seed"] == r["seed"])
        excluded.append((r["workdir"], f"duplicate of {twin['workdir']} (same config and seed)"))
      else:
        used.append(r)
      seen.setdefault(real, r["workdir"])
    row = {"dataset": first["dataset"], "model": first["model"], "strategy": first["strategy"],
           "settings": setting, "runs": len(used), "seeds": [u["seed"] for u in used],
           "workdirs": [u["workdir"] for u in used], "excluded": excluded,
           "rounds": 0, "num_labelled": [], "acc_mean": [], "acc_std": [],
           "aubc_mean": float("nan"), "aubc_std": float("nan"),
           "aubc_ci95": [float("nan")] * 2, "final_mean": float("nan")}
    if used:
      n = min(len(u["accuracy"]) for u in used)
      acc = np.array([u["accuracy"][:n] for u in used], np.float64)
      aubcs = [metrics.aubc(u["num_labelled"][:n], u["accuracy"][:n]) for u in used]
      row.update(rounds=n, num_labelled=used[0]["num_labelled"][:n],
                 acc_mean=acc.mean(0).tolist(), acc_std=sample_std(acc).tolist(),
                 aubc_mean=float(np.mean(aubcs)), aubc_std=float(sample_std(aubcs)),
                 aubc_ci95=t_interval(aubcs), final_mean=float(acc[:, -1].mean()))
    out[label] = row
  return out


def sample_std(values) -> np.ndarray:
  """Standard deviation over seeds (axis 0) with ddof=1; 0 for a single seed."""
  v = np.asarray(values, np.float64)
  return v.std(0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1:])


def t_interval(values, level: float = 0.95) -> list[float]:
  """[low, high]: the `level` Student-t confidence interval of the mean; NaN for one value."""
  from scipy import stats  # Lazy: only summaries need it.
  v = np.asarray(values, np.float64)
  if len(v) < 2:
    return [float("nan")] * 2
  half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
  return [float(v.mean() - half), float(v.mean() + half)]


def _sorted_rows(summary: dict):
  def order(kv):
    s = kv[1]
    return (str(s["dataset"]), str(s["model"]),
            -s["aubc_mean"] if math.isfinite(s["aubc_mean"]) else math.inf, kv[0])
  return sorted(summary.items(), key=order)


def table(summary: dict) -> str:
  """Markdown table, best AUBC first per dataset and model, then the runs
  left out of the averages and why."""
  lines = ["| strategy | dataset | model | runs | rounds | AUBC (mean ± sd) | AUBC 95% CI "
           "| final accuracy | run folders |", "|---|---|---|---|---|---|---|---|---|"]
  for label, s in _sorted_rows(summary):
    ci = "—"
    if s["runs"] > 1:
      aubc = f"{s['aubc_mean']:.4f} ± {s['aubc_std']:.4f}"
      ci = "[{:.4f}, {:.4f}]".format(*s["aubc_ci95"])
    elif s["runs"]:
      aubc = f"{s['aubc_mean']:.4f}"
    else:
      aubc = "no usable run"
    final = f"{s['final_mean']:.4f}" if s["runs"] else "—"
    folders = ", ".join(_folder(w) for w in s["workdirs"]) or "—"
    lines.append(f"| {label} | {s['dataset']} | {s['model']} | {s['runs']} | {s['rounds']} "
                 f"| {aubc} | {ci} | {final} | {folders} |")
  left_out = [(label, w, why) for label, s in _sorted_rows(summary) for w, why in s["excluded"]]
  if left_out:
    lines += ["", "Not averaged:"]
    lines += [f"- {w} ({label}): {why}" for label, w, why in left_out]
  return "\n".join(lines)


def _folder(workdir: str) -> str:
  """A run's folder name; a parallel run's seeds show as RUN/seed_<s>."""
  parts = os.path.normpath(workdir).split(os.sep)
  return "/".join(parts[-2:]) if parts[-1].startswith("seed_") else parts[-1]


def to_csv(summary: dict) -> str:
  """One CSV row per experiment (the Markdown table's content, machine-readable)."""
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(["row", "dataset", "model", "strategy", "settings", "runs", "seeds", "rounds",
              "aubc_mean", "aubc_std", "aubc_ci95_low", "aubc_ci95_high", "final_accuracy",
              "workdirs", "excluded"])
  for label, s in _sorted_rows(summary):
    w.writerow([label, s["dataset"], s["model"], s["strategy"], s["settings"], s["runs"],
                " ".join(map(str, s["seeds"])), s["rounds"], f"{s['aubc_mean']:.6f}",
                f"{s['aubc_std']:.6f}", *(f"{v:.6f}" for v in s["aubc_ci95"]),
                f"{s['final_mean']:.6f}", " ".join(s["workdirs"]),
                "; ".join(f"{d}: {why}" for d, why in s["excluded"])])
  return buf.getvalue()


def plot(out: str, summary: dict) -> list[str]:
  """One learning-curve PNG per dataset; legends carry each row's AUBC.

  Returns:
    The paths written.
  """
  by_dataset = defaultdict(dict)
  for label, s in _sorted_rows(summary):
    if s["runs"]:
      by_dataset[s["dataset"]][f"{label}: AUBC {s['aubc_mean']:.3f}"] = (
          s["num_labelled"], s["acc_mean"], s["acc_std"])
  paths = []
  for ds, curves in sorted(by_dataset.items()):
    name = "learning_curves.png" if len(by_dataset) == 1 else f"learning_curves_{ds}.png"
    paths.append(os.path.join(out, name))
    metrics.plot_curves(paths[-1], curves,
                        title=f"{ds}: test accuracy (mean ± std over seeds)")
  return paths


def define_flags() -> None:
  """--out; defined on demand, not at import (benchmarks import this module
  with flags of their own)."""
  if "out" not in flags.FLAGS:
    flags.DEFINE_string("out", ".", "Folder for table.md, aubc.csv, aubc.json and the plots.")


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    sys.exit("usage: python -m al_jax.report WORKDIR [WORKDIR ...] [--out DIR]")
  try:
    summary = summarise([load_run(w) for w in workdirs])
  except FileNotFoundError as e:
    sys.exit(f"error: {e}")
  text = table(summary)
  print(text)
  out = flags.FLAGS.out
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write(text + "\n")
  with open(os.path.join(out, "aubc.csv"), "w", newline="") as f:
    f.write(to_csv(summary))
  metrics.write_json(os.path.join(out, "aubc.json"), summary)
  plot(out, summary)


if __name__ == "__main__":
  define_flags()
  app.run(main)
