"""Stride-1 2-D convolution with a CPU-friendly backward pass.

XLA's CPU backend runs the two convolutions of a conv layer's backward pass
(the weight gradient, a "convolution" whose window is the whole output map,
and the input gradient with an 'oi' kernel layout) on a slow generic path:
profiled on the Gal et al. MNIST CNN (batch 128, 2 cores), the conv2 weight
gradient took 1.97 s and the input gradient 0.57 s of a 2.7 s training step,
while the forward convolution took 0.15 s. On CPU the forward pass stays
XLA's convolution, and a custom JVP gives the tangent in GEMM form
(kh GEMMs over kw concatenated shifted views); reverse mode transposes that
into GEMMs, slices and pads (the step above: 0.43 s), and forward mode
(jax.jvp, ISAL's Hessian-vector products) keeps working. Other backends keep
XLA's own gradients (cuDNN / TPU convolutions are fast).
"""

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

_DN = ("NHWC", "HWIO", "NHWC")


def _valid(x: jax.Array, w: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


def _valid_gemm(x: jax.Array, w: jax.Array) -> jax.Array:
  """The same VALID convolution as kh GEMMs over kw concatenated shifted views.

  Slower than XLA's forward convolution, but its autodiff transposes are
  GEMMs, slices and pads, which XLA's CPU backend runs fast.
  """
  kh, kw, ci, co = w.shape
  b, h, wd = x.shape[0], x.shape[1] - kh + 1, x.shape[2] - kw + 1
  out = 0.0
  for i in range(kh):
    cols = jnp.concatenate([x[:, i:i + h, j:j + wd, :] for j in range(kw)], -1)
    out = out + cols.reshape(-1, kw * ci) @ w[i].reshape(kw * ci, co)
  return out.reshape(b, h, wd, co)


# Primal: XLA's fast forward convolution. Tangent: the GEMM form, linear in
# (dx, dw); reverse mode transposes it into the fast backward above, and
# forward mode (jax.jvp, ISAL's Hessian-vector products) still works, which
# a custom_vjp would forbid.
@jax.custom_jvp
def _valid_cpu(x, w):
  return _valid(x, w)


def _valid_cpu_jvp(primals, tangents):
  x, w = primals
  dx, dw = tangents
  out = _valid(x, w)
  terms = []
  if not isinstance(dx, SymbolicZero):  # e.g. the network input: no term at all
    terms.append(_valid_gemm(dx, w))
  if not isinstance(dw, SymbolicZero):
    terms.append(_valid_gemm(x, dw))
  return out, (sum(terms[1:], terms[0]) if terms else jnp.zeros_like(out)).astype(out.dtype)


_valid_cpu.defjvp(_valid_cpu_jvp, symbolic_zeros=True)


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
