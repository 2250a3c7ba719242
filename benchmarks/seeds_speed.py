"""Wall time of S seeds as one program (al.num_seeds) against S single runs.

  python benchmarks/seeds_speed.py                       # all three models, S = 1, 3, 8
  python benchmarks/seeds_speed.py --models digits_mlp --seeds 1,8 --rounds 3
  python benchmarks/seeds_speed.py --profile_steps 100 --seeds 8   # ms per training step

For each model and S it runs, back to back in this process, the S seeds as
one parallel run and then the same S seeds as S single runs (the sequential
way every seed used to be its own process; each run compiles its own
functions either way), and prints a Markdown table: seconds for both, the
speed-up, and the parallel time over the time of one seed (the target is at
most 3x for 8 seeds of the MLPs on a CPU). Every run is a whole al_jax run
(train, evaluate, score, select, write, checkpoint) of the model's protocol,
shortened to --rounds query rounds (and the CNN to fewer epochs and MC
samples) so the script finishes in minutes. Runs write to a temporary folder.
--profile_steps N times N training steps per seed instead (a batch of the
pool, the protocol's optimiser): S single jitted calls against vmap and
lax.map over the seeds, which says where a parallel run's time goes.
"""

import functools
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
_PROFILE = flags.DEFINE_integer("profile_steps", 0, "Instead of whole runs: time this many "
                                "training steps of each model for S seeds: S single jitted "
                                "calls, vmap and lax.map over the seeds (ms per step).")


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


def step_profile(model: str, num_seeds: int, steps: int) -> str:
  """One Markdown row: ms per training step of S seeds, three ways (why a target is missed)."""
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from al_jax import train  # pylint: disable=import-outside-toplevel
  c = config(model, 1)
  _, _, pool, _, fns, _ = loop.setup(c)
  bsz = int(c.train.batch_size)
  tx = train.make_optimizer(c.train)
  unroll = bool(c.train.get("unroll_steps", False))  # the CNN's steps run unrolled on CPU

  def run(params, rest, x, y, key):
    def step(i, carry):
      p, o = carry
      loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
          fns.apply_train(p, rest, x, jax.random.fold_in(key, i))[0], y).mean()
      u, o = tx.update(jax.grad(loss)(p), o, p)
      return optax.apply_updates(p, u), o
    return jax.lax.fori_loop(0, steps, step, (params, tx.init(params)), unroll=unroll)[0]

  keys = jax.random.split(jax.random.key(0), num_seeds)
  params, rest = jax.vmap(fns.init)(keys)
  x = jax.numpy.stack([pool.x[s * bsz:(s + 1) * bsz] for s in range(num_seeds)])
  y = jax.numpy.stack([pool.y[s * bsz:(s + 1) * bsz] for s in range(num_seeds)])
  args = (params, rest, x, y, keys)
  take = lambda s: jax.tree.map(lambda a: a[s], args)
  one = jax.jit(run)
  ways = {"sequential": lambda: [one(*take(s)) for s in range(num_seeds)],
          "vmap": functools.partial(jax.jit(jax.vmap(run)), *args),
          "lax.map": functools.partial(jax.jit(lambda *a: jax.lax.map(lambda t: run(*t), a)),
                                       *args)}
  ms = {}
  for name, fn in ways.items():
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(3):
      t = time.perf_counter()
      jax.block_until_ready(fn())
      times.append(time.perf_counter() - t)
    ms[name] = min(times) / steps * 1e3
  return (f"| {model} | {num_seeds} | {ms['sequential'] / num_seeds:.2f} | {ms['sequential']:.2f} "
          f"| {ms['vmap']:.2f} | {ms['lax.map']:.2f} |")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _PROFILE.value:
    rows = ["| model | S | one seed (ms/step) | S seeds: sequential | vmap | lax.map |",
            "|---|---|---|---|---|---|"]
    for model in _MODELS.value:
      for s in map(int, _SEEDS.value):
        rows.append(step_profile(model, s, _PROFILE.value))
        print(rows[-1], flush=True)
    print("\n".join(rows))
    return
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
