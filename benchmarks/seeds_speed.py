"""Wall time of S seeds as one program (al.num_seeds) against S single runs.

  python benchmarks/seeds_speed.py                       # all three models, S = 1, 3, 8
  python benchmarks/seeds_speed.py --models digits_mlp --seeds 1,8 --rounds 3

For each model and S it runs, back to back in this process, the S seeds as
one parallel run and then the same S seeds as S single runs (the sequential
way every seed used to be its own process; each run compiles its own
functions either way), and prints a Markdown table: seconds for both, the
speed-up, and the parallel time over the time of one seed (the target is at
most 3x for 8 seeds of the MLPs on a CPU). Every run is a whole al_jax run
(train, evaluate, score, select, write, checkpoint) of the model's protocol,
shortened to --rounds query rounds (and the CNN to fewer epochs and MC
samples) so the script finishes in minutes. Runs write to a temporary folder.
"""

import os
import shutil
import sys
import tempfile
import time

from absl import app, flags, logging

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from al_jax import config_utils, loop  # noqa: E402

# model -> (config spec, overrides of the shortened protocol).
MODELS = {
    "digits_mlp": ("configs/digits.py:margin,table", {}),
    "mnist10k_mlp": ("configs/mnist10k.py:margin,table", {}),
    # Gal et al.'s CNN, BALD on 2,000-row candidate subsets: 5 epochs and K = 5.
    "gal_cnn": ("configs/bald_mnist.py:bald", {"train.num_epochs": 5,
                                              "strategy.kw.num_samples": 5}),
}

_MODELS = flags.DEFINE_list("models", list(MODELS), f"Any of {list(MODELS)}.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "3", "8"], "Numbers of seeds S.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Query rounds per run (the protocol's are shortened).")
_SEED_MAP = flags.DEFINE_string("seed_map", "vmap", "al.seed_map of the parallel runs.")


def config(model: str, rounds: int, **extra):
  spec, over = MODELS[model]
  c = config_utils.load_file(os.path.join(ROOT, spec)).copy_and_resolve_references()
  c.update_from_flattened_dict({"al.num_rounds": rounds, "progress": False, **over, **extra})
  return c


def timed(c, root: str) -> float:
  w = tempfile.mkdtemp(dir=root)
  t = time.perf_counter()
  loop.run(c, w)
  elapsed = time.perf_counter() - t
  shutil.rmtree(w, ignore_errors=True)
  return elapsed


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  root = tempfile.mkdtemp(prefix="seeds_speed_")
  rows = ["| model | S | parallel (s) | sequential (s) | speed-up | parallel / one seed |",
          "|---|---|---|---|---|---|"]
  try:
    # Untimed: imports, backend start-up and data caches would land on the first row.
    timed(config(_MODELS.value[0], 1, **{"train.num_epochs": 1, "train.min_steps": 0}), root)
    for model in _MODELS.value:
      one = None
      for s in map(int, _SEEDS.value):
        par = timed(config(model, _ROUNDS.value, **{"al.num_seeds": s,
                                                     "al.seed_map": _SEED_MAP.value}), root)
        seq = sum(timed(config(model, _ROUNDS.value, seed=k), root) for k in range(s))
        if s == 1:
          one = seq  # a single run: the reference of the last column
        ratio = f"{par / one:.2f}x" if one else "—"
        rows.append(f"| {model} | {s} | {par:.1f} | {seq:.1f} | {seq / par:.2f}x | {ratio} |")
        print(rows[-1], flush=True)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  print("\n".join(rows))


if __name__ == "__main__":
  app.run(main)
