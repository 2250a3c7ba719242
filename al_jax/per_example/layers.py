"""Per-example gradient reductions of one layer from its taps (a, delta).

A kernel's per-example gradient is G = sum_p patch_p(a) (x) delta_p over the
output positions p (one position for a Dense layer on [B, d] inputs). The
functions here reduce G to a squared norm, a dot product with a fixed V or a
k-dimensional sketch without forming a batch of full-network gradients.

Everything is written for a 2-D convolution: a [B, H, W, Ci] (already
padded), delta [B, Ho, Wo, Co], kernel [kh, kw, Ci, Co], strides (sh, sw).
A Dense layer on a [B, T, d] input is the 1x1 convolution with H = T, W = 1
(`as_conv`), so one code path serves both.

The squared norm takes the cheaper of two exact forms, chosen per layer from
its static shape (flop counts, T = Ho Wo, K = kh kw Ci):
  "gram": ||G||^2 = sum_{p,q} (patch_p . patch_q)(delta_p . delta_q),
          T^2 (K + Co) flops; T = 1 gives ||a||^2 ||delta||^2;
  "full": materialise the per-example kernel gradient [K, Co] and square it,
          T K Co flops (small kernels over many positions).
"""

import jax
import jax.numpy as jnp

DN = ("NHWC", "HWIO", "NHWC")
_HI = jax.lax.Precision.HIGHEST


def as_conv(a: jax.Array, d: jax.Array):
  """Dense taps a [B, ..., din], delta [B, ..., dout] as a 1x1 conv's [B, T, 1, .]."""
  b = a.shape[0]
  return a.reshape(b, -1, 1, a.shape[-1]), d.reshape(b, -1, 1, d.shape[-1])


def slices(a: jax.Array, kh: int, kw: int, strides, out_hw):
  """[(i, j, S_ij [B, Ho, Wo, Ci])]: the input seen by kernel tap (i, j).

  patch_p(a)[i, j, :] = S_ij[p], so no [T, K] patch matrix is ever built.
  """
  sh, sw = strides
  ho, wo = out_hw
  out = []
  for i in range(kh):
    for j in range(kw):
      s = jax.lax.slice(a, (0, i, j, 0),
                        (a.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, a.shape[3]),
                        (1, sh, sw, 1))
      out.append((i, j, s))
  return out


def norm_form(kshape, out_hw) -> str:
  """"gram" or "full", whichever costs fewer flops for this layer's shape."""
  kh, kw, ci, co = kshape
  t, k = out_hw[0] * out_hw[1], kh * kw * ci
  return "gram" if t * t * (k + co) <= t * k * co else "full"


def kernel_grad(a, d, kshape, strides) -> jax.Array:
  """[B, kh, kw, Ci, Co] per-example kernel gradients (the "full" form)."""
  kh, kw = kshape[:2]
  d = d.astype(jnp.float32)
  g = [[None] * kw for _ in range(kh)]
  for i, j, s in slices(a.astype(jnp.float32), kh, kw, strides, d.shape[1:3]):
    g[i][j] = jnp.einsum("bhwc,bhwo->bco", s, d, precision=_HI)
  return jnp.stack([jnp.stack(row, 1) for row in g], 1)


def prepare(a, kshape, strides, out_hw, form: str):
  """The delta-independent part of the squared norm (computed once for EGL's
  C backward passes): the patch Gram [B, T, T] or the padded input itself."""
  if form == "full":
    return a
  b = a.shape[0]
  t = out_hw[0] * out_hw[1]
  gram = 0.0
  for _, _, s in slices(a.astype(jnp.float32), kshape[0], kshape[1], strides, out_hw):
    s = s.reshape(b, t, -1)
    gram = gram + jnp.einsum("bpc,bqc->bpq", s, s, precision=_HI)
  return gram


def sq_norm(prep, d, kshape, strides, form: str) -> jax.Array:
  """[B] ||G||^2 of the kernel from `prepare`'s output and delta."""
  d = d.astype(jnp.float32)
  if form == "full":
    g = kernel_grad(prep, d, kshape, strides)
    return jnp.sum(jnp.square(g), axis=(1, 2, 3, 4))
  dd = d.reshape(d.shape[0], -1, d.shape[-1])
  if dd.shape[1] == 1:  # one position: ||a||^2 ||delta||^2
    return prep[:, 0, 0] * jnp.sum(dd * dd, axis=(1, 2))
  gd = jnp.einsum("bpc,bqc->bpq", dd, dd, precision=_HI)
  return jnp.sum(prep * gd, axis=(1, 2))


def _conv(a, w, strides):
  if w.shape[:2] == (1, 1) and tuple(strides) == (1, 1):
    return jnp.einsum("bhwc,co->bhwo", a, w[0, 0], precision=_HI)
  return jax.lax.conv_general_dilated(a, w, tuple(strides), "VALID", dimension_numbers=DN,
                                      precision=_HI)


def dot(a, d, v, strides) -> jax.Array:
  """[B] G . V = sum_p delta_p . (patch_p V): the layer's forward map applied
  to a with kernel V, against delta (no per-example G)."""
  av = _conv(a.astype(jnp.float32), v.astype(jnp.float32), strides)
  return jnp.sum(av * d.astype(jnp.float32), axis=(1, 2, 3))


def project(a, d, r1, r2, strides) -> jax.Array:
  """[B, k] X_j = r1_j^T G r2_j for a Khatri-Rao sketch (r1 [kh, kw, Ci, k],
  r2 [Co, k], independent standard normals; E[X_j(G) X_j(H)] = <G, H>).

  Takes the cheaper of materialising G (T K Co + K Co k flops) and the
  position form sum_p (r1_j . patch_p)(r2_j . delta_p) (T k (K + Co)).
  """
  kh, kw, ci, k = r1.shape
  co = r2.shape[0]
  t = d.shape[1] * d.shape[2]
  kk = kh * kw * ci
  d = d.astype(jnp.float32)
  if t * kk * co + kk * co * k < t * k * (kk + co):
    g = kernel_grad(a, d, (kh, kw, ci, co), strides).reshape(a.shape[0], kk, co)
    gr2 = jnp.einsum("bKo,oj->bKj", g, r2, precision=_HI)
    return jnp.einsum("bKj,Kj->bj", gr2, r1.reshape(kk, k), precision=_HI)
  u = _conv(a.astype(jnp.float32), r1, strides)  # [B, Ho, Wo, k]
  w = jnp.einsum("bhwo,oj->bhwj", d, r2, precision=_HI)
  return jnp.sum(u * w, axis=(1, 2))
