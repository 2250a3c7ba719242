"""Full-network per-example gradient norms, dot products and projections from
layer taps: one forward pass, then one backward pass per cotangent.

The cross-entropy gradient w.r.t. the logits of example i for label c is
q_i = softmax(z_i) - e_c, so per-example parameter gradients are the
pullback of the [B, C] cotangent q; every function here builds q, pulls it
back once (C times, as one vmapped pullback, for `class_grad_norms`, EGL)
and reduces each layer with `layers`. The norms run over row chunks
(`chunk_rows`), so memory is O(chunk x cotangents x activations) (plus, for
a kernel reduced in the "full" form, the chunk's small per-example kernel
gradients); no full-network per-example gradient is ever formed.

The sketch of `projections` is fixed by `seed` and the parameter's leaf
index: a Khatri-Rao Gaussian sketch (r1 (x) r2 per row) for kernels, a dense
Gaussian for biases, BatchNorm and untapped parameters, each with
E[<P g, P h>] = <g, h>; the k rows are summed over layers and scaled by
1 / sqrt(k). The error of <P g, P h> has standard deviation at most
3 ||g|| ||h|| / sqrt(k) (fourth moments of Gaussian chaos of order 2).
"""

import jax
import jax.numpy as jnp

from al_jax import sharding
from al_jax.per_example import layers
from al_jax.per_example.taps import Forward, discover, forward


def _inputs(fwd: Forward) -> list:
  """Per tapped call: a conv-form input [B, H, W, Ci] (padded; Dense as
  [B, T, 1, d]) and its output size (Ho, Wo), or BatchNorm's x-hat."""
  out = []
  for spec, a in zip([s for s in fwd.plan if s.kind], fwd.acts):
    if spec.kind == "bn":
      out.append((a, None))
    elif fwd.leaves[spec.leaves[0]].ndim == 2:  # Dense: a 1x1 conv over positions
      t = 1
      for n in spec.shape[1:-1]:
        t *= n
      out.append((a.reshape(a.shape[0], t, 1, a.shape[-1]), (t, 1)))
    else:
      out.append((jnp.pad(a[:, 0], ((0, 0),) + spec.meta[2] + ((0, 0),)), spec.shape[1:3]))
  return out


def _parts(fwd: Forward, inputs: list, q):
  """Per-example gradient pieces for cotangent q: ("kernel", leaf, a, delta,
  kshape, strides) with conv-form a/delta, or ("full", leaf, g [B, ...])."""
  deltas, dus = fwd.pull(q.astype(fwd.logits.dtype))
  parts = []
  for spec, (a, hw), d in zip([s for s in fwd.plan if s.kind], inputs, deltas):
    d = d.astype(jnp.float32)
    if spec.kind == "bn":
      red = tuple(range(1, d.ndim - 1))
      scale, bias = spec.leaves
      if scale is not None:
        parts.append(("full", scale, jnp.sum(d * a, axis=red)))
      if bias is not None:
        parts.append(("full", bias, jnp.sum(d, axis=red)))
      continue
    kernel, bias = spec.leaves
    kshape, strides, _ = spec.meta
    d_c = d.reshape((d.shape[0],) + tuple(hw) + (d.shape[-1],))
    parts.append(("kernel", kernel, a, d_c, kshape, strides))
    if bias is not None:
      parts.append(("full", bias, jnp.sum(d_c, axis=(1, 2))))
  for i in fwd.untapped:
    parts.append(("full", i, dus[i].astype(jnp.float32)))
  return parts


def tapped_kernels(fwd: Forward) -> set:
  """Leaf indices of the kernels reduced by their taps (sketched Khatri-Rao)."""
  return {s.leaves[0] for s in fwd.plan if s.kind == "conv"}


def _full_sq(g):
  return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1)


def sq_norm_fn(fwd: Forward):
  """Q [m, B, C] -> [m, B] squared gradient norms over all parameters for m
  cotangents per example. The delta-independent part of each kernel (its
  patch Gram) is computed here, once, for all m cotangents; the m pullbacks
  run as one vmapped backward pass, so a conv's input gradient is one
  convolution over m x B rows, and a materialised per-example kernel
  gradient is one contraction per example with the m cotangents side by side
  (a [K, m Co] result instead of m thin [K, Co] ones)."""
  inputs = _inputs(fwd)
  preps = {}
  for spec, (a, hw) in zip([s for s in fwd.plan if s.kind], inputs):
    if spec.kind == "conv":
      kshape, strides, _ = spec.meta
      form = layers.norm_form(kshape, hw)
      preps[spec.leaves[0]] = (form, layers.prepare(a, kshape, strides, hw, form))

  def sq(q):
    total = 0.0
    for part in _parts(fwd, inputs, q):
      if part[0] == "full":
        total = total + _full_sq(part[2])
      else:
        _, leaf, _, d, kshape, strides = part
        form, prep = preps[leaf]
        total = total + layers.sq_norm(prep, d, kshape, strides, form)
    return total
  return jax.vmap(sq)


def _q(logits, y):
  p = jax.nn.softmax(logits.astype(jnp.float32))
  return p - jax.nn.one_hot(y, p.shape[-1], dtype=p.dtype)


def chunk_rows(fwd_plan, num_cotangents: int, budget_bytes: int = 24 << 20) -> int:
  """Rows per chunk so that the chunk's activations and cotangents (float32,
  num_cotangents pullbacks at once) stay within `budget_bytes`: memory
  O(chunk x activations), and a chunk of a few MB of activations per layer
  stays close to the cache (Gal CNN at batch 200, CPU time: GraNd 354 ms in
  chunks of 50 rows against 467 ms unchunked; EGL 1.43 s in chunks of 20
  against 1.94 s)."""
  per_row = 0
  for s in fwd_plan:
    if s.kind:
      n = 1
      for d in s.shape[1:]:
        n *= d
      per_row += 4 * n * (1 + 2 * num_cotangents)  # input, output cotangent, kernel grad
  return max(1, budget_bytes // max(per_row, 1))


def _chunked(fn, fns, params, rest, x, tree, num_cotangents, rows):
  """fn(x_chunk, *tree_chunk) over row chunks (`rows`, default from
  `chunk_rows`), one after another."""
  if rows is None:
    plan, _ = discover(fns, params, rest, x[:1])
    rows = chunk_rows(plan, num_cotangents)
  n = x.shape[0]
  if rows >= n:
    return fn(x, *tree)
  rows = -(-n // -(-n // rows))  # equal chunks: the least padding for that count
  return sharding.chunked_map(lambda t: fn(*t), (x,) + tuple(tree), rows, strided=True)


def _loss_chunks(reduce, fns, params, rest, x, y, rows):
  """reduce(fwd, q) -> [m, ...] over row chunks: one tapped forward pass per
  chunk and q the cotangent of CE(x_i, y_i); y=None takes the predicted
  labels argmax f(x_i) of that same pass (no second forward pass for yhat)."""
  def one(xb, *yb):
    fwd = forward(fns, params, rest, xb)
    return reduce(fwd, _q(fwd.logits, yb[0] if yb else jnp.argmax(fwd.logits, -1)))
  return _chunked(one, fns, params, rest, x, () if y is None else (y,), 1, rows)


def grad_norms(fns, params, rest, x, y=None, *, rows=None) -> jax.Array:
  """[B] ||grad_theta CE(x_i, y_i)||_2 over all parameters (GraNd); y=None
  takes the predicted labels argmax f(x_i) from the same forward pass."""
  def reduce(fwd, q):
    return jnp.sqrt(jnp.maximum(sq_norm_fn(fwd)(q[None])[0], 0.0))
  return _loss_chunks(reduce, fns, params, rest, x, y, rows)


def class_grad_norms(fns, params, rest, x, with_probs: bool = False, *, rows=None):
  """[B, C] ||grad_theta CE(x_i, c)||_2 for every class c (EGL): one forward
  pass and the C pullbacks of the batch as one vmapped backward pass, over
  row chunks so memory stays O(chunk x C x activations). with_probs=True
  also returns the softmax [B, C] of the same forward pass."""
  def one(xb):
    fwd = forward(fns, params, rest, xb)
    p = jax.nn.softmax(fwd.logits.astype(jnp.float32))
    c = p.shape[-1]
    q = p[None] - jnp.eye(c, dtype=p.dtype)[:, None, :]  # [C, B, C]: cotangent of class k
    return jnp.sqrt(jnp.maximum(sq_norm_fn(fwd)(q).T, 0.0)), p
  norms, p = _chunked(one, fns, params, rest, x, (), fns.num_classes, rows)
  return (norms, p) if with_probs else norms


def loss_dot(fns, params, rest, x, y, v, *, rows=None) -> jax.Array:
  """[B] grad_theta CE(x_i, y_i) . v (ISAL's g_i . s_test) from the taps,
  over row chunks as `grad_norms` (y=None: predicted labels)."""
  vl = jax.tree.leaves(v)

  def reduce(fwd, q):
    total = 0.0
    for part in _parts(fwd, _inputs(fwd), q):
      if part[0] == "full":
        g = part[2]
        total = total + jnp.sum((g * vl[part[1]].astype(jnp.float32)).reshape(g.shape[0], -1), 1)
      else:
        _, leaf, a, d, kshape, strides = part
        total = total + layers.dot(a, d, vl[leaf].reshape(kshape), strides)
    return total
  return _loss_chunks(reduce, fns, params, rest, x, y, rows)


def _sketch(seed: int, leaf: int):
  return jax.random.fold_in(jax.random.key(seed), leaf)


def project_parts(parts, k: int, seed: int) -> jax.Array:
  """[B, k] sketch of the per-example gradients given as `_parts`."""
  total = 0.0
  for part in parts:
    key = _sketch(seed, part[1])
    if part[0] == "full":
      g = part[2].reshape(part[2].shape[0], -1)
      r = jax.random.normal(key, (g.shape[1], k), jnp.float32)
      total = total + jnp.dot(g, r, precision=jax.lax.Precision.HIGHEST)
    else:
      _, _, a, d, kshape, strides = part
      k1, k2 = jax.random.split(key)
      r1 = jax.random.normal(k1, tuple(kshape[:3]) + (k,), jnp.float32)
      r2 = jax.random.normal(k2, (kshape[3], k), jnp.float32)
      total = total + layers.project(a, d, r1, r2, strides)
  return total / jnp.sqrt(float(k))


def projections(fns, params, rest, x, y=None, *, k: int = 512, seed: int = 0,
                rows=None) -> jax.Array:
  """[B, k] seeded random projection of grad_theta CE(x_i, y_i) over all
  parameters: <P g_i, P g_j> estimates <g_i, g_j> without bias. Over row
  chunks as `grad_norms` (y=None: predicted labels); the sketch does not
  depend on the chunking."""
  return _loss_chunks(lambda fwd, q: project_parts(_parts(fwd, _inputs(fwd), q), k, seed),
                      fns, params, rest, x, y, rows)


def sketch_reference(grads, kernels: set, *, k: int = 512, seed: int = 0) -> jax.Array:
  """[k] the sketch of `projections` applied to ONE explicit gradient pytree
  (the test reference); `kernels` = `tapped_kernels` of the model."""
  total = 0.0
  for i, g in enumerate(jax.tree.leaves(grads)):
    key = _sketch(seed, i)
    g = g.astype(jnp.float32)
    if i in kernels:
      kshape = g.shape if g.ndim == 4 else (1, 1) + g.shape
      k1, k2 = jax.random.split(key)
      r1 = jax.random.normal(k1, tuple(kshape[:3]) + (k,), jnp.float32)
      r2 = jax.random.normal(k2, (kshape[3], k), jnp.float32)
      total = total + jnp.einsum("Ko,Kj,oj->j", g.reshape(-1, kshape[3]),
                                 r1.reshape(-1, k), r2, precision=jax.lax.Precision.HIGHEST)
    else:
      r = jax.random.normal(key, (g.size, k), jnp.float32)
      total = total + jnp.dot(g.reshape(-1), r, precision=jax.lax.Precision.HIGHEST)
  return total / jnp.sqrt(float(k))
