"""Multi-layer perceptron (the default model on 8x8 digits)."""

from typing import Sequence

import jax
from flax import nnx


class MLP(nnx.Module):
  """Flatten -> [Linear -> ReLU -> Dropout] * L -> head.

  `embed` returns the last hidden layer (the penultimate features).
  Dropout is active only when call-time `rngs` are given.
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

  def embed(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    h = x.reshape((x.shape[0], -1))
    for layer in self.layers:
      h = self.drop(jax.nn.relu(layer(h)), rngs=rngs, deterministic=rngs is None)
    return h

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    return self.head(self.embed(x, rngs=rngs))
