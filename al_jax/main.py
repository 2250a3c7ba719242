"""Runs one active-learning experiment.

  python -m al_jax.main --config configs/default.py --workdir /tmp/al
  python -m al_jax.main --config configs/default.py:smoke --workdir /tmp/al \
      --config.strategy.name=margin --config.al.num_rounds=3
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# New attributes are accepted so `--config.strategy.kw.KEY=V` parses for any
# strategy picked by `--config.strategy.name`; config_utils.resolve rejects
# every other field the config file does not define.
_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=False, accept_new_attributes=True)
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


def _resolved_config():
  """The config after overrides, strategy.kw completed for the final strategy."""
  from al_jax import config_utils
  flag = flags.FLAGS["config"]
  # The file alone, without the overrides.
  file_config = config_utils.load_file(config_flags.get_config_filename(flag))
  config = config_utils.resolve(_CONFIG.value, file_config,
                                config_flags.get_override_values(flag))
  config.lock()
  return config


def main(argv):
  del argv
  # Orbax logs every checkpoint step at INFO; keep the console to our output.
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  from al_jax import determinism  # XLA flags: before JAX starts its backends.
  determinism.apply(bool(_CONFIG.value.get("deterministic", False)))
  if os.environ.get("AL_JAX_DISTRIBUTED") == "1":
    _initialize_distributed()
  from al_jax import loop  # Imported after distributed init on purpose.
  try:
    config = _resolved_config()
    loop.run(config, _WORKDIR.value)
  except (ValueError, FileNotFoundError, FloatingPointError) as e:
    # Bad input: one clear line, no traceback (set --verbosity=1 for one).
    if flags.FLAGS["verbosity"].present:
      raise
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
