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
    self.feature_dims = tuple(dims[1:])

  def _trunk(self, x, rngs):
    h, feats = x.reshape((x.shape[0], -1)), []
    for layer in self.layers:
      h = jax.nn.relu(layer(h))
      feats.append(h)
      h = self.drop(h, rngs=rngs, deterministic=rngs is None)
    return h, feats

  def embed(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    return self._trunk(x, rngs)[0]

  def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None):
    """(logits, [each hidden layer's activations [B, d_l]]) from one forward pass."""
    h, feats = self._trunk(x, rngs)
    return self.head(h), feats

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    return self.head(self.embed(x, rngs=rngs))
