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


def main(argv):
  del argv
  # Orbax logs every checkpoint step at INFO; keep the console to our output.
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if os.environ.get("AL_JAX_DISTRIBUTED") == "1":
    _initialize_distributed()
  from al_jax import loop  # Imported after distributed init on purpose.
  try:
    loop.run(_CONFIG.value, _WORKDIR.value)
  except (ValueError, FileNotFoundError, FloatingPointError) as e:
    # Bad input: one clear line, no traceback (set --verbosity=1 for one).
    if flags.FLAGS["verbosity"].present:
      raise
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
