"""Runs one active-learning experiment.

  python -m al_jax.main --config configs/default.py --workdir /tmp/al
  python -m al_jax.main --config configs/default.py:smoke --workdir /tmp/al \
      --config.strategy.name=margin --config.al.num_rounds=3
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for metrics, plots and checkpoints.")
flags.mark_flags_as_required(["config", "workdir"])


def _initialize_distributed():
  """jax.distributed.initialize(): explicit from AL_JAX_COORDINATOR /
  AL_JAX_NUM_PROCESSES / AL_JAX_PROCESS_ID when set (launch/local_multiprocess.sh),
  otherwise JAX's auto-detection (TPU VMs, SLURM)."""
  import jax  # Must run before any other JAX call.
  env = os.environ
  if "AL_JAX_COORDINATOR" in env:
    jax.distributed.initialize(coordinator_address=env["AL_JAX_COORDINATOR"],
                               num_processes=int(env["AL_JAX_NUM_PROCESSES"]),
                               process_id=int(env["AL_JAX_PROCESS_ID"]))
  else:
    jax.distributed.initialize()


def _config_error(e: Exception) -> str:
  """One line for a --config that cannot be loaded or overridden."""
  spec = _config_spec(sys.argv[1:])
  path = spec.split(":")[0]
  if not os.path.isfile(path):
    return (f"--config {spec}: no such file {path!r}; pass a config file such as "
            f"configs/default.py (relative to the current directory)")
  overrides = [a.split("=")[0][2:] for a in sys.argv[1:] if a.startswith("--config.")]
  missing = str(e).strip("'\"")
  bad = [o for o in overrides if missing and missing in o.split(".")[1:]]
  if isinstance(e, (KeyError, AttributeError)) and bad:
    field = bad[0][len("config."):]
    parent = field.rpartition(".")[0]
    known = _known_fields(spec, parent)
    return (f"--{bad[0]}: the config has no field {field!r}"
            + (f"; {parent or 'the config'} takes {known}" if known is not None else "")
            + "; check the spelling")
  first = str(e).splitlines()[0] if str(e) else type(e).__name__
  return f"--config {spec}: {first}"


def _config_spec(argv) -> str:
  """The --config argument as given (flags may not be parsed yet)."""
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.partition("=")[2]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return ""


def _parse_flags(argv):
  """absl's flag parsing, with a bad --config.X override as one `error:` line."""
  try:
    return app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError, TypeError, ValueError, OSError) as e:
    if any(a.startswith("--verbosity") or a == "-v" for a in argv):
      raise
    sys.exit(f"error: {_config_error(e)}")


def _known_fields(spec: str, parent: str):
  """Field names under `parent` in the un-overridden config (None if unknown).

  For strategy.kw: the hyperparameters of the strategy the command names.
  """
  import importlib.util
  try:
    path, _, arg = spec.partition(":")
    mod_spec = importlib.util.spec_from_file_location("_al_jax_config", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    node = mod.get_config(arg or None)
    if parent == "strategy.kw":
      import inspect
      from al_jax import strategies
      name = node.strategy.name
      for a in sys.argv[1:]:
        if a.startswith("--config.strategy.name="):
          name = a.partition("=")[2]
      return [k for k in inspect.signature(strategies.STRATEGIES[name]).parameters
              if k != "fns"]
    for part in [p for p in parent.split(".") if p]:
      node = node[part]
    return sorted(node.keys())
  except Exception:  # Only decorates the message; never masks the real error.
    return None


def main(argv):
  del argv
  # Orbax logs every checkpoint step at INFO; keep the console to our output.
  verbose = flags.FLAGS["verbosity"].present
  if not verbose:
    logging.set_verbosity(logging.WARNING)
  try:
    config = _CONFIG.value  # Parsed lazily: a bad file or override fails here,
    config.keys()  # or (a file that failed to load) on first use.
  except Exception as e:  # ml_collections raises OSError, KeyError, AttributeError, ...
    if verbose:
      raise
    sys.exit(f"error: {_config_error(e)}")
  from al_jax import determinism  # XLA flags: before JAX starts its backends.
  determinism.apply(bool(config.get("deterministic", False)))
  if os.environ.get("AL_JAX_DISTRIBUTED") == "1":
    _initialize_distributed()
  from al_jax import checkpoint, lock, loop  # Imported after distributed init on purpose.
  try:
    loop.run(config, _WORKDIR.value)
  except (ValueError, FileNotFoundError, FloatingPointError, lock.WorkdirBusyError,
          loop.WorkdirError, checkpoint.CheckpointError) as e:
    # Bad input or an unusable workdir: one clear line, no traceback (set
    # --verbosity=1 for one).
    if verbose:
      raise
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
