"""The small CNN of Gal, Islam & Ghahramani (2017) for MNIST.

conv32 - relu - conv32 - relu - maxpool 2 - dropout .25 - dense128 - relu -
dropout .5 - head. Their Keras code uses 4x4 'valid' convolutions; both are
configurable so the same network also fits 8x8 digits.
"""

import jax
from flax import nnx

from al_jax.models.base import head_outputs
from al_jax.models.conv import conv2d


class CNN(nnx.Module):
  """Gal et al. (2017) MNIST CNN; out["pre_logits"] = the 128-d dense features."""

  def __init__(self, input_shape, num_classes: int, *, filters: int = 32,
               kernel_size: int = 4, padding: str = "VALID", dense: int = 128,
               dropout_conv: float = 0.25, dropout_dense: float = 0.5,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    k = (kernel_size, kernel_size)
    self.conv1 = nnx.Conv(c, filters, k, padding=padding, rngs=rngs)
    self.conv2 = nnx.Conv(filters, filters, k, padding=padding, rngs=rngs)
    self.padding = padding
    if padding == "VALID":
      h, w = h - 2 * (kernel_size - 1), w - 2 * (kernel_size - 1)
    if h < 2 or w < 2:
      raise ValueError(f"CNN input {input_shape} too small for kernel_size "
                       f"{kernel_size} with padding {padding}")
    flat = (h // 2) * (w // 2) * filters
    self.drop_conv = nnx.Dropout(dropout_conv)
    self.dense = nnx.Linear(flat, dense, rngs=rngs)
    self.drop_dense = nnx.Dropout(dropout_dense)
    self.head = nnx.Linear(dense, num_classes, rngs=rngs)
    self.embed_dim = dense

  def _conv(self, layer: nnx.Conv, x):
    """The layer's own kernel and bias through models.conv (fast CPU backward)."""
    return conv2d(x, layer.kernel[...], self.padding) + layer.bias[...]

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None):
    """(logits, out); stages: conv1 [B,H,W,F], conv2 [B,H',W',F], dense [B,D]."""
    h1 = jax.nn.relu(self._conv(self.conv1, x))
    h2 = jax.nn.relu(self._conv(self.conv2, h1))
    h = nnx.max_pool(h2, (2, 2), strides=(2, 2))
    h = self.drop_conv(h, rngs=rngs)
    h = jax.nn.relu(self.dense(h.reshape((h.shape[0], -1))))
    return head_outputs(self.drop_dense, self.head, h, [h1, h2, h], rngs)
