"""Orbax checkpoints after every round: {round, labelled mask, params if warm}.

For warm starts "params" is (params, rest), plus the training extension's
carried params (LL4AL's loss module) where it has any. Resuming restores the
labelled mask (and those params for warm starts) of the last finished round; every later key is `fold_in(root, round)`, so the resumed run
selects exactly what an uninterrupted run would.
"""

import contextlib
import os

import numpy as np
from absl import logging
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint on disk cannot be read back."""


def finished_rounds(workdir: str) -> list[int]:
  """Rounds with a committed checkpoint, read from the folder names alone.

  Orbax writes a step into a temporary folder and renames it to the bare step
  number when complete, so digit-only folders are exactly the finished
  rounds. Needs no CheckpointManager, so process 0 can decide alone.
  """
  d = os.path.join(workdir, "ckpt")
  if not os.path.isdir(d):
    return []
  return sorted(int(n) for n in os.listdir(d) if n.isdigit())


@contextlib.contextmanager
def _quiet():
  """Mutes Orbax's own log lines on damaged files: restore() raises one clear error."""
  verbosity = logging.get_verbosity()
  if verbosity < logging.INFO:  # Unless the user asked for logs (--verbosity).
    logging.set_verbosity(logging.FATAL)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


class Checkpointer:

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.dir = os.path.abspath(os.path.join(workdir, "ckpt"))
    with _quiet():
      self.mgr = ocp.CheckpointManager(
          self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_round(self) -> int | None:
    with _quiet():
      return self.mgr.latest_step()

  def save(self, round_: int, labelled: np.ndarray, meta: dict, params=None) -> None:
    state = {"labelled": np.asarray(labelled)}
    if params is not None:
      state["params"] = params
    self.mgr.save(round_, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    self.mgr.wait_until_finished()

  def restore(self, round_: int, num_rows: int, params_like=None):
    """Returns (labelled, meta, params or None); `params_like` gives the tree."""
    target = {"labelled": np.zeros(num_rows, bool)}
    if params_like is not None:
      target["params"] = params_like
    try:
      with _quiet():
        restored = self.mgr.restore(round_, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
      state, meta = restored["state"], restored["meta"]
      labelled = np.asarray(state["labelled"])
      if labelled.shape != (num_rows,):
        raise ValueError(f"labelled mask of shape {labelled.shape}, expected ({num_rows},)")
    except Exception as e:  # Orbax raises many types for damaged files.
      step_dir = os.path.join(self.dir, str(round_))
      raise CheckpointError(
          f"the checkpoint of round {round_} ({step_dir}) is unreadable "
          f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); "
          f"delete that folder and run the same command again to redo round {round_} "
          f"from the checkpoint before it, or use a new --workdir") from e
    return labelled.astype(bool), meta, state.get("params")

  def close(self):
    self.mgr.close()
