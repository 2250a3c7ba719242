"""Multi-layer perceptron (the default model on 8x8 digits)."""

from typing import Sequence

import jax
from flax import nnx


class MLP(nnx.Module):
  """Flatten -> [Linear -> ReLU -> Dropout] * L -> head.

  out["pre_logits"] is the last hidden layer after dropout (the head's
  input); out["stages"] each hidden layer's activations before dropout.
  """

  def __init__(self, in_features: int, num_classes: int, *,
               hidden: Sequence[int] = (256, 128), dropout: float = 0.0,
               rngs: nnx.Rngs):
    dims = [in_features, *hidden]
    self.layers = nnx.List(
        [nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
    self.drop = nnx.Dropout(dropout)
    self.head = nnx.Linear(dims[-1], num_classes, rngs=rngs)
    self.embed_dim = dims[-1]

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None):
    """(logits, out); see models/base.py."""
    h, stages = x.reshape((x.shape[0], -1)), []
    for layer in self.layers:
      h = jax.nn.relu(layer(h))
      stages.append(h)
      h = self.drop(h, rngs=rngs)
    return self.head(h), {"pre_logits": h, "stages": stages}
