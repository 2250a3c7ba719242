"""Orbax checkpoints after every round: {round, labelled mask, params if warm}.

Resuming restores the labelled mask (and params for warm starts) of the last
finished round; every later key is `fold_in(root, round)`, so the resumed run
selects exactly what an uninterrupted run would.
"""

import os

import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.dir = os.path.abspath(os.path.join(workdir, "ckpt"))
    self.mgr = ocp.CheckpointManager(
        self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_round(self) -> int | None:
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
    restored = self.mgr.restore(round_, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
    state, meta = restored["state"], restored["meta"]
    return np.asarray(state["labelled"]).astype(bool), meta, state.get("params")

  def close(self):
    self.mgr.close()
