"""The beta-VAE and discriminator networks of VAAL, SRAAL and TA-VAAL.

VAE (after Sinha et al. 2019): an encoder of 4x4 stride-2 convolutions
(`channels`, ReLU), flattened into Linear heads for mu and log sigma^2 of a
`z_dim` latent; the decoder maps its input (a slice of z, optionally with a
conditioning vector appended) through Linear to the smallest feature map and
4x4 stride-2 transposed convolutions back up, then a 1x1 convolution to the
input channels, cropped to the input size. `channels=()` gives a fully
connected VAE (one hidden layer of `dense` units) for tiny inputs.
Discriminator: an MLP (`hidden`, ReLU) to one logit.

Differences from the reference networks, deliberate: no BatchNorm (the VAE
is trained and applied inside one jitted function; plain ReLU layers keep
it stateless and identical in training and query), and 'SAME' padding so
any input size works (28x28 MNIST, 8x8 digits), not only 32x32.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


class VAE(nnx.Module):

  def __init__(self, input_shape, z_dim: int, *, channels: Sequence[int] = (128, 256, 512, 1024),
               dense: int = 256, dec_in: int | None = None, rngs: nnx.Rngs):
    h, w, c = input_shape
    self.input_shape = (h, w, c)
    self.channels = tuple(channels)
    dec_in = z_dim if dec_in is None else dec_in
    if self.channels:
      self.convs = nnx.List([nnx.Conv(a, b, (4, 4), strides=2, padding="SAME", rngs=rngs)
                             for a, b in zip((c,) + self.channels[:-1], self.channels)])
      for _ in self.channels:
        h, w = -(-h // 2), -(-w // 2)
      self.small = (h, w, self.channels[-1])
      flat = math.prod(self.small)
      ups = list(reversed(self.channels))
      self.deconvs = nnx.List([nnx.ConvTranspose(a, b, (4, 4), strides=2, padding="SAME",
                                                 rngs=rngs)
                               for a, b in zip(ups, ups[1:] + [ups[-1]])])
      self.out = nnx.Conv(ups[-1], c, (1, 1), rngs=rngs)
    else:  # fully connected
      self.enc_hidden = nnx.Linear(h * w * c, dense, rngs=rngs)
      flat = dense
      self.dec_hidden = nnx.Linear(dense, h * w * c, rngs=rngs)
    self.mu = nnx.Linear(flat, z_dim, rngs=rngs)
    self.logvar = nnx.Linear(flat, z_dim, rngs=rngs)
    self.dec_in = nnx.Linear(dec_in, flat, rngs=rngs)

  def encode(self, x: jax.Array):
    """(mu, logvar), each [B, z_dim]."""
    x = x.reshape((x.shape[0],) + self.input_shape)
    if self.channels:
      for conv in self.convs:
        x = jax.nn.relu(conv(x))
      x = x.reshape((x.shape[0], -1))
    else:
      x = jax.nn.relu(self.enc_hidden(x.reshape((x.shape[0], -1))))
    return self.mu(x), self.logvar(x)

  def decode(self, z: jax.Array) -> jax.Array:
    """Reconstruction [B, H, W, C] from the decoder input."""
    h = jax.nn.relu(self.dec_in(z))
    if self.channels:
      h = h.reshape((h.shape[0],) + self.small)
      for deconv in self.deconvs:
        h = jax.nn.relu(deconv(h))
      hh, ww, _ = self.input_shape
      return self.out(h)[:, :hh, :ww, :]
    return self.dec_hidden(h).reshape((h.shape[0],) + self.input_shape)


class Discriminator(nnx.Module):

  def __init__(self, in_dim: int, *, hidden: Sequence[int] = (512, 512), rngs: nnx.Rngs):
    dims = [in_dim, *hidden]
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
    self.out = nnx.Linear(dims[-1], 1, rngs=rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    """Logit [B] of "labelled"."""
    for layer in self.layers:
      z = jax.nn.relu(layer(z))
    return self.out(z)[:, 0]


class MLPClassifier(nnx.Module):
  """SRAAL's target learner on the latent: Linear-ReLU stack to C logits."""

  def __init__(self, in_dim: int, num_classes: int, *, hidden: Sequence[int] = (1024, 256),
               rngs: nnx.Rngs):
    dims = [in_dim, *hidden]
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
    self.out = nnx.Linear(dims[-1], num_classes, rngs=rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    for layer in self.layers:
      z = jax.nn.relu(layer(z))
    return self.out(z)


def kl_divergence(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mu, sigma^2) || N(0, I)) per row, summed over latent dims: [B]."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mu * mu - 1.0 - logvar, axis=-1)
