"""Stride-1 2-D convolution with a CPU-friendly backward pass.

XLA's CPU backend runs the two convolutions of a conv layer's backward pass
(the weight gradient, a "convolution" whose window is the whole output map,
and the input gradient with an 'oi' kernel layout) on a slow generic path:
profiled on the Gal et al. MNIST CNN (batch 128, 2 cores), the conv2 weight
gradient took 1.97 s and the input gradient 0.57 s of a 2.7 s training step,
while the forward convolution took 0.15 s. On CPU this module computes
  dW[i, j] = sum_{b,h,w} x[b, h+i, w+j, :]^T dy[b, h, w, :]
as kh GEMMs over kw concatenated shifted views (0.16 s), and
  dx = conv(pad(dy, k-1), flip(W) with in/out swapped)
as an ordinary forward convolution (0.025 s). Other backends keep XLA's own
gradients (cuDNN / TPU convolutions are fast).
"""

import jax
import jax.numpy as jnp

_DN = ("NHWC", "HWIO", "NHWC")


def _valid(x: jax.Array, w: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


@jax.custom_vjp
def _valid_cpu(x, w):
  return _valid(x, w)


def _fwd(x, w):
  return _valid(x, w), (x, w)


def _bwd(res, dy):
  x, w = res
  kh, kw, ci, co = w.shape
  h, wd = dy.shape[1], dy.shape[2]
  d2 = dy.reshape(-1, co)
  rows = [jnp.concatenate([x[:, i:i + h, j:j + wd, :] for j in range(kw)], -1)
          .reshape(-1, kw * ci).T @ d2 for i in range(kh)]
  dw = jnp.stack(rows).reshape(kh, kw, ci, co).astype(w.dtype)
  dyp = jnp.pad(dy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
  dx = _valid(dyp, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)).astype(x.dtype)
  return dx, dw


_valid_cpu.defvjp(_fwd, _bwd)


def same_padding(k: int) -> tuple[int, int]:
  """XLA's 'SAME' split for stride 1: k - 1 zeros, the extra one after."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def conv2d(x: jax.Array, w: jax.Array, padding: str = "VALID") -> jax.Array:
  """x [B, H, W, Ci] * w [kh, kw, Ci, Co], stride 1, 'VALID' or 'SAME'."""
  padding = padding.upper()
  if padding not in ("VALID", "SAME"):
    raise ValueError(f"conv2d padding must be 'VALID' or 'SAME', got {padding!r}")
  if padding == "SAME":
    x = jnp.pad(x, ((0, 0), same_padding(w.shape[0]), same_padding(w.shape[1]), (0, 0)))
  return (_valid_cpu if jax.default_backend() == "cpu" else _valid)(x, w)
