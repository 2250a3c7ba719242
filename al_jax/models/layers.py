"""Layers shared by the strategies' auxiliary networks (critics, loss modules, GCNs)."""

import jax
import jax.numpy as jnp
from flax import nnx


def uniform(fan: int):
  """Initialiser U(-1/sqrt(fan), 1/sqrt(fan)): PyTorch's nn.Linear default
  (fan = fan_in, weight and bias alike), which the reference codes use."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -1.0, 1.0) / jnp.sqrt(fan)
  return init


def torch_linear(din: int, dout: int, *, fan: int | None = None, use_bias: bool = True,
                 rngs: nnx.Rngs) -> nnx.Linear:
  """nnx.Linear initialised as PyTorch's (fan defaults to din)."""
  init = uniform(din if fan is None else fan)
  return nnx.Linear(din, dout, use_bias=use_bias, kernel_init=init, bias_init=init, rngs=rngs)
