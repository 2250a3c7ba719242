"""Run outputs: JSONL records, AUBC and the learning-curve plot.

Only process 0 writes (`is_writer`); every file is written whole through a
temporary file and a rename, so a killed run never leaves a torn line.
"""

import json
import os
from typing import Iterable, Mapping, Sequence

import jax
import numpy as np


def is_writer() -> bool:
  return jax.process_index() == 0


def _atomic_write(path: str, text: str) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str, records: Iterable[Mapping]) -> None:
  _atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def append_jsonl(path: str, record: Mapping) -> None:
  write_jsonl(path, read_jsonl(path) + [dict(record)])


def write_json(path: str, obj) -> None:
  _atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def aubc(num_labelled: Sequence[float], accuracy: Sequence[float]) -> float:
  """Area under the budget curve, normalised to [0, 1].

  As in DeepAL+ (utils.py): trapezoid rule over the labels *added* since
  round 0 (round 0 = the model trained on the initial set is included),
  divided by the total added; a run with no acquisition returns its accuracy.
  """
  x = np.asarray(num_labelled, np.float64)
  y = np.asarray(accuracy, np.float64)
  if len(x) != len(y) or len(x) == 0:
    raise ValueError(f"aubc needs equal, non-empty curves; got {len(x)} and {len(y)}")
  if len(x) == 1 or x[-1] == x[0]:
    return float(y.mean())
  area = np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0)
  return float(area / (x[-1] - x[0]))


def plot_curves(path: str, curves: Mapping[str, tuple], title: str = "") -> None:
  """Learning curves: {label: (num_labelled, accuracy[, std])} -> PNG."""
  import matplotlib  # Lazy: only the writer process plots.
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
  for label, curve in curves.items():
    x, y = np.asarray(curve[0]), np.asarray(curve[1])
    ax.plot(x, y, marker="o", ms=3, label=label)
    if len(curve) > 2 and curve[2] is not None:
      s = np.asarray(curve[2])
      ax.fill_between(x, y - s, y + s, alpha=0.2)
  ax.set_xlabel("labelled examples")
  ax.set_ylabel("test accuracy")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  tmp = f"{path}.tmp{os.getpid()}.png"
  fig.savefig(tmp)
  plt.close(fig)
  os.replace(tmp, path)
