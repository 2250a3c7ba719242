"""What every model's `__call__` returns, built in one place.

`__call__(x, *, rngs=None) -> (logits, out)` with out["pre_logits"] [B, D]
(the head's input) and out["stages"] (per-stage features, for LL4AL-style
heads), computed anyway and pruned by jit where unused (big_vision's
convention). Train vs eval mode is never chosen here: `models.functional`
sets Dropout's `deterministic` and BatchNorm's `use_running_average`
together through `nnx.view`; `rngs` only supplies the dropout keys.
"""

import jax
from flax import nnx


def head_outputs(drop: nnx.Dropout, head: nnx.Linear, h: jax.Array, stages: list,
                 rngs: nnx.Rngs | None):
  """(logits, out) from the trunk's features h: dropout, then the head."""
  h = drop(h, rngs=rngs)
  return head(h), {"pre_logits": h, "stages": stages}
