"""Layer taps: each layer's input a and output cotangent delta from ONE
forward and ONE backward pass of the batch.

While `fns.apply` is traced inside `intercept`, calls of nnx.Linear,
nnx.Conv, nnx.BatchNorm and models.conv.conv2d are routed through a recorder
that (1) notes the layer's input (for BatchNorm: the normalised x-hat) and
(2) adds a zero-valued perturbation eps to the layer's output. The cotangent
of eps is then delta = dL/d(output) per example. The models stay plain NNX;
the interception only lives while our own function is being traced.

Why a per-example vmap around the model: a parameter that no tap covers (an
unknown layer type, an unsupported setting such as grouped convolution, or a
bias added outside a tapped call, like the Gal CNN's conv biases) gets one
broadcast copy per example, and the same backward pass returns its
per-example gradient: vmap(grad) for that parameter only, never for the
tapped kernels. Under vmap the model still runs as batched GEMMs/convs.

Which parameter a tap belongs to is found by object identity: nnx.merge puts
the traced leaves of `params` into the Variables unchanged, so
`layer.kernel[...]` is the very leaf object. A leaf used by two tapped calls
(weight sharing) cannot be split per call, so those calls fall back too.
"""

import contextlib
import functools
import logging
import sys
import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.linear import canonicalize_padding

from al_jax.models import conv as conv_mod
from al_jax.per_example import layers

log = logging.getLogger(__name__)

_ORIG_LINEAR = nnx.Linear.__call__
_ORIG_CONV = nnx.Conv.__call__
_ORIG_BN = nnx.BatchNorm.__call__
_ORIG_CONV2D = conv_mod.conv2d
_ORIG_MERGE = nnx.merge
_ORIG_MAX_POOL = nnx.max_pool
_LOCK = threading.RLock()
# The recorder of the trace in progress, per thread: a thread tracing some
# other model while the layer classes are patched calls the originals.
_LOCAL = threading.local()
_WARNED: set = set()


class Spec(NamedTuple):
  """One intercepted call, as found by the discovery trace (static)."""
  kind: str              # "conv" (Dense is a 1x1 conv), "bn"; "" = not tapped
  leaves: tuple          # conv: (kernel, bias | None); bn: (scale | None, bias | None)
  meta: tuple            # conv: (kshape, strides, pads); bn: ()
  shape: tuple = ()      # the layer output's shape for one example (batch 1)
  dtype: Any = None


class Recorder:
  """Discovery (eps is None): records Specs. Apply: follows `plan`, records
  activations and adds eps to the outputs of tapped calls."""

  def __init__(self, ids=None, plan=None, eps=None):
    self.ids, self.plan, self.eps = ids, plan, eps
    self.num_leaves = len(ids) if ids else 0
    self.specs, self.acts, self.n, self.k = [], [], 0, 0

  def call(self, kind, values, meta, act_fn, y):
    if self.plan is None:  # discovery
      leaves = tuple(None if v is None else self.ids.get(id(v), -1) for v in values)
      if kind == "conv":  # the kernel must be a parameter leaf; a bias may be absent
        ok = leaves[0] is not None and -1 not in leaves
      else:
        ok = kind == "bn" and -1 not in leaves and any(l is not None for l in leaves)
      self.specs.append(Spec(kind if ok else "", leaves, meta, tuple(y.shape), y.dtype))
      return y
    spec = self.plan[self.n]
    self.n += 1
    if not spec.kind:
      return y
    self.acts.append(act_fn())
    e = self.eps[self.k]
    self.k += 1
    return y + e.astype(y.dtype)


def _rec():
  stack = getattr(_LOCAL, "stack", None)
  return stack[-1] if stack else None


def _linear(self, inputs, out_sharding=None):
  y = _ORIG_LINEAR(self, inputs, out_sharding)
  rec = _rec()
  if rec is None:
    return y
  din, dout = self.kernel.shape
  meta = ((1, 1, din, dout), (1, 1), ((0, 0), (0, 0)))
  bias = self.bias[...] if self.bias is not None else None
  return rec.call("conv", (self.kernel[...], bias), meta, lambda: inputs, y)


def _conv(self, inputs, out_sharding=None):
  y = _ORIG_CONV(self, inputs, out_sharding)
  rec = _rec()
  if rec is None:
    return y
  kind, meta = "", ()
  one = lambda v: v is None or all(int(s) == 1 for s in (v if isinstance(v, (tuple, list))
                                                        else (v,)))
  pad = self.padding
  if (len(self.kernel_size) == 2 and inputs.ndim == 4 and self.feature_group_count == 1
      and one(self.input_dilation) and one(self.kernel_dilation) and self.mask is None
      and not (isinstance(pad, str) and pad.upper() in ("CIRCULAR", "CAUSAL"))):
    s = self.strides if self.strides is not None else 1
    strides = tuple(s) if isinstance(s, (tuple, list)) else (s, s)
    pads = canonicalize_padding(pad, 2)
    if isinstance(pads, str):
      pads = jax.lax.padtype_to_pads(inputs.shape[1:3], self.kernel_size, strides, pads)
    kind = "conv"
    meta = (tuple(self.kernel.shape), strides, tuple(tuple(int(q) for q in p) for p in pads))
  bias = self.bias[...] if self.bias is not None else None
  return rec.call(kind, (self.kernel[...], bias), meta, lambda: inputs, y)


def _bn(self, x, use_running_average=None, *, mask=None):
  y = _ORIG_BN(self, x, use_running_average, mask=mask)
  rec = _rec()
  if rec is None:
    return y
  running = use_running_average if use_running_average is not None else \
      self.use_running_average
  axes = self.axis if isinstance(self.axis, (tuple, list)) else (self.axis,)
  kind = "bn" if (running and mask is None and tuple(a % x.ndim for a in axes)
                  == (x.ndim - 1,)) else ""

  def xhat():  # what d out / d scale multiplies (flax: (x - mean) rsqrt(var + eps))
    m, v = self.mean[...].astype(jnp.float32), self.var[...].astype(jnp.float32)
    return (x.astype(jnp.float32) - m) * jax.lax.rsqrt(v + self.epsilon)

  scale = self.scale[...] if self.scale is not None else None
  bias = self.bias[...] if self.bias is not None else None
  return rec.call(kind, (scale, bias), (), xhat, y)


def _conv_xla(x, w, pads):
  return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=layers.DN)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _tap_conv(x, w, pads):
  """Stride-1 convolution (models.conv.conv2d's primal) whose input gradient
  is spelled out as a forward convolution of the padded cotangent with the
  flipped kernel in HWIO layout. The taps pull back to every layer's input;
  conv2d's GEMM-form transpose took 182 ms CPU time for the Gal CNN's conv2
  at batch 200, this form 47 ms; and left to itself XLA gives the transposed
  kernel an 'oi' layout inside loops (lax.map), which ran over 100x slower."""
  return _conv_xla(x, w, pads)


def _tap_conv_fwd(x, w, pads):
  return _conv_xla(x, w, pads), (x, w)


def _tap_conv_bwd(pads, res, g):
  x, w = res
  kh, kw = w.shape[:2]
  # The barrier keeps the HWIO copy of the flipped kernel from being folded
  # back into the convolution as an 'oi' layout.
  wt = jax.lax.optimization_barrier(jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2))
  back = ((kh - 1 - pads[0][0], kh - 1 - pads[0][1]), (kw - 1 - pads[1][0], kw - 1 - pads[1][1]))
  dx = _conv_xla(g, wt.astype(g.dtype), back).astype(x.dtype)
  # The kernel's gradient is only used when the kernel is not tapped (shared
  # weights fall back to vmap(grad)); unused, it is dead code to XLA. Spelled
  # out as one contraction per kernel offset: under that fallback's vmap,
  # the vjp of conv_general_dilated (a batch-grouped convolution) has no
  # batching rule (NotImplementedError on the MNIST-10k CNN's EGL/GraNd).
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  h, w_ = g.shape[1:3]
  dw = jnp.stack([jnp.stack([
      jnp.einsum("nhwc,nhwd->cd", xp[:, i:i + h, j:j + w_, :], g,
                 preferred_element_type=jnp.float32) for j in range(kw)]) for i in range(kh)])
  return dx, dw.astype(w.dtype)


_tap_conv.defvjp(_tap_conv_fwd, _tap_conv_bwd)


def _conv2d(x, w, padding="VALID"):
  rec = _rec()
  if rec is None:
    return _ORIG_CONV2D(x, w, padding)
  pads = ((0, 0), (0, 0))
  if padding.upper() == "SAME":
    pads = (conv_mod.same_padding(w.shape[0]), conv_mod.same_padding(w.shape[1]))
  y = _tap_conv(x, w, pads)
  meta = (tuple(w.shape), (1, 1), pads)
  return rec.call("conv", (w, None), meta, lambda: x, y)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _tiled_max(x, k: int):
  """x [..., k] -> max over the last axis (the windows of a non-overlapping
  max pool, laid out by `_max_pool`)."""
  return jnp.max(x, -1)


def _tiled_max_fwd(x, k):
  return jnp.max(x, -1), jnp.argmax(x, -1)


def _tiled_max_bwd(k, idx, g):
  # The whole cotangent goes to the FIRST maximum of each window, as XLA's
  # select_and_scatter (select = ge) does for lax.reduce_window max: equal
  # values (constant image background after ReLU) must not split it.
  return (jax.nn.one_hot(idx, k, dtype=g.dtype) * g[..., None],)


_tiled_max.defvjp(_tiled_max_fwd, _tiled_max_bwd)


def _max_pool(inputs, window_shape, strides=None, padding="VALID"):
  """nnx.max_pool; a non-overlapping 2-D pool (strides = window, VALID, NHWC)
  as reshape + max with a one-hot backward pass. XLA's CPU backward of
  reduce_window max (select_and_scatter, lowered to index tuples and a
  scatter) took 75 ms CPU time for the Gal CNN's pool at batch 200, against
  0.8 ms for its forward; the reshaped form is elementwise."""
  window = tuple(window_shape)
  if (_rec() is None or len(window) != 2 or inputs.ndim != 4
      or tuple(strides or (1, 1)) != window
      or not (isinstance(padding, str) and padding.upper() == "VALID")):
    return _ORIG_MAX_POOL(inputs, window_shape, strides, padding)
  (kh, kw), (b, h, w, c) = window, inputs.shape
  ho, wo = h // kh, w // kw
  x = inputs[:, :ho * kh, :wo * kw].reshape(b, ho, kh, wo, kw, c)
  x = x.transpose(0, 1, 3, 5, 2, 4).reshape(b, ho, wo, c, kh * kw)
  return _tiled_max(x, kh * kw)


def _merge(graphdef, state, *states, **kw):
  # A wrapper such as precision.with_compute_dtype casts the params before
  # nnx.merge, so the layers hold the cast leaves: the params State handed to
  # merge (same tree, same leaf order) identifies them too.
  rec = _rec()
  if rec is not None and rec.ids is not None:
    leaves = jax.tree.leaves(state)
    if len(leaves) == rec.num_leaves:
      rec.ids.update({id(v): i for i, v in enumerate(leaves)})
  return _ORIG_MERGE(graphdef, state, *states, **kw)


@contextlib.contextmanager
def intercept(rec: Recorder):
  """Routes the known layer calls through `rec` while the block runs."""
  with _LOCK:
    patched = [(nnx.Linear, "__call__", _linear), (nnx.Conv, "__call__", _conv),
               (nnx.BatchNorm, "__call__", _bn), (nnx, "merge", _merge),
               (nnx, "max_pool", _max_pool)]
    # conv2d is imported by name (`from al_jax.models.conv import conv2d`).
    patched += [(m, "conv2d", _conv2d) for m in list(sys.modules.values())
                if getattr(m, "conv2d", None) is _ORIG_CONV2D]
    saved = [(o, n, getattr(o, n)) for o, n, _ in patched]
    for o, n, f in patched:
      setattr(o, n, f)
    _LOCAL.stack = getattr(_LOCAL, "stack", []) + [rec]
    try:
      yield rec
    finally:
      _LOCAL.stack = _LOCAL.stack[:-1]
      for o, n, f in saved:
        setattr(o, n, f)


def leaf_names(params) -> list[str]:
  """'conv1.kernel'-style names of params' leaves, in jax.tree.leaves order."""
  names = []
  for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
    keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    names.append(".".join(k for k in keys if k != "value"))
  return names


def _logits(out):
  return out[0] if isinstance(out, tuple) else out  # models may return (logits, out)


def discover(fns, params, rest, x1):
  """(plan: tuple[Spec] per intercepted call, untapped leaf indices)."""
  treedef = jax.tree.structure(params)

  def run(p, r, xi):
    leaves = jax.tree.leaves(p)
    rec = Recorder(ids={id(v): i for i, v in enumerate(leaves)})
    with intercept(rec):
      fns.apply(p, r, xi)
    found.extend(rec.specs)
    return 0

  found: list = []
  jax.eval_shape(run, params, rest, x1)
  count: dict = {}
  for s in found:
    for leaf in s.leaves:
      if s.kind and leaf is not None:
        count[leaf] = count.get(leaf, 0) + 1
  plan = tuple(s if s.kind and all(count.get(l, 0) == 1 for l in s.leaves if l is not None)
               else s._replace(kind="") for s in found)
  covered = {l for s in plan if s.kind for l in s.leaves if l is not None}
  untapped = tuple(i for i in range(treedef.num_leaves) if i not in covered)
  if untapped:
    names = leaf_names(params)
    msg = ", ".join(names[i] for i in untapped)
    if msg not in _WARNED:
      _WARNED.add(msg)
      big = any(jnp.ndim(jax.tree.leaves(params)[i]) > 1 for i in untapped)
      (log.warning if big else log.info)(
          "per_example taps: no tap for %s (a layer type or setting the taps do not know, "
          "or a parameter used outside its layer call); their per-example gradients use "
          "vmap(grad)", msg)
  return plan, untapped


class Forward(NamedTuple):
  """One forward pass with taps. pull(q [B, C]) -> (deltas per tapped call,
  {leaf: per-example gradient [B, ...]} of the untapped leaves)."""
  logits: jax.Array
  pull: Any
  plan: tuple
  acts: list
  untapped: tuple
  leaves: list


def forward(fns, params, rest, x) -> Forward:
  """The batch's logits and pullback with every known layer tapped (eval mode)."""
  leaves, treedef = jax.tree.flatten(params)
  plan, untapped = discover(fns, params, rest, x[:1])
  b = x.shape[0]
  eps0 = [jnp.zeros((b,) + s.shape, s.dtype) for s in plan if s.kind]
  u0 = {i: jnp.broadcast_to(leaves[i], (b,) + leaves[i].shape) for i in untapped}

  def f(eps, u):
    def one(e, ui, xi):
      ls = list(leaves)
      for i, v in ui.items():
        ls[i] = v
      rec = Recorder(plan=plan, eps=e)
      with intercept(rec):
        out = _logits(fns.apply(jax.tree.unflatten(treedef, ls), rest, xi[None]))
      return out[0], rec.acts
    return jax.vmap(one)(eps, u, x)

  logits, pull, acts = jax.vjp(f, eps0, u0, has_aux=True)
  return Forward(logits, pull, plan, acts, untapped, leaves)
