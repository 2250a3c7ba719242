"""Layer-tap per-example gradients against vmap(grad) and brute force."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding, PartitionSpec as P

from al_jax import models, per_example
from al_jax.per_example import fast, layers, taps

MODELS = {  # tiny widths; eval mode
    "mlp": ((4,), dict(hidden=(5, 6))),
    "cnn": ((7, 7, 1), dict(filters=2, kernel_size=2, dense=4)),
    "cnn_same": ((6, 6, 1), dict(filters=2, kernel_size=3, dense=4, padding="SAME")),
    "vgg16_bn": ((32, 32, 3), dict(width_scale=1 / 32)),
    "resnet18": ((8, 8, 3), dict(width=2)),
}
NUM_CLASSES = 3


def _model(name, n=6, pad=2):
  """fns, params, rest (BatchNorm statistics randomised, so eval-mode BN is
  not the identity), x with `pad` zero padding rows, y."""
  shape, kw = MODELS[name]
  fns = models.build(name.replace("_same", ""), shape, NUM_CLASSES, **kw)
  params, rest = fns.init(jax.random.key(0))
  leaves, treedef = jax.tree.flatten(rest)
  rng = np.random.default_rng(1)
  leaves = [jnp.asarray(rng.uniform(0.5, 1.5, a.shape).astype(a.dtype))
            if jnp.issubdtype(a.dtype, jnp.floating) else a for a in leaves]
  rest = jax.tree.unflatten(treedef, leaves)
  x = rng.normal(size=(n,) + shape).astype(np.float32)
  x = jnp.asarray(np.concatenate([x, np.zeros((pad,) + shape, np.float32)]))
  y = jnp.arange(n + pad) % NUM_CLASSES
  return fns, params, rest, x, y


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
  return _model(request.param)


def test_grad_norms_equal_vmap_grad(model):
  fns, params, rest, x, y = model
  ref = per_example.grad_norms(fns, params, rest, x, y, 3)
  got = jax.jit(lambda p, x, y: per_example.tap_grad_norms(fns, p, rest, x, y))(params, x, y)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_class_grad_norms_equal_vmap_grad(model):
  fns, params, rest, x, _ = model
  ref = per_example.class_grad_norms(fns, params, rest, x, 4)
  got = jax.jit(lambda p, x: per_example.tap_class_grad_norms(fns, p, rest, x))(params, x)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_loss_dot_equals_jvp(model):
  fns, params, rest, x, y = model
  leaves, treedef = jax.tree.flatten(params)
  v = jax.tree.unflatten(treedef, [jax.random.normal(jax.random.key(i), a.shape)
                                   for i, a in enumerate(leaves)])
  ref = per_example.loss_dot(fns, params, rest, x, y, v)
  got = jax.jit(lambda p, x, y: per_example.tap_loss_dot(fns, p, rest, x, y, v))(params, x, y)
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(ref))))


@pytest.mark.parametrize("name", ["mlp", "resnet18", pytest.param("cnn", marks=pytest.mark.slow),
                                  pytest.param("vgg16_bn", marks=pytest.mark.slow)])
def test_one_and_eight_devices_agree(devices, name):
  fns, params, rest, x, y = _model(name, n=14, pad=2)  # 16 rows over 8 devices
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)
  rows = NamedSharding(mesh, P("data"))
  fn = jax.jit(lambda p, x, y: (per_example.tap_grad_norms(fns, p, rest, x, y),
                                per_example.tap_class_grad_norms(fns, p, rest, x),
                                per_example.grad_projections(fns, p, rest, x, y, k=16)))
  one = fn(params, x, y)
  eight = fn(params, jax.device_put(x, rows), jax.device_put(y, rows))
  for a, b in zip(one, eight):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(one[0], per_example.grad_norms(fns, params, rest, x, y, 4),
                             rtol=1e-5)


def _brute_kernel_grad(a, d, kh, kw, strides):
  """[B, kh, kw, Ci, Co] by an explicit loop over output positions (NumPy)."""
  a, d = np.asarray(a, np.float64), np.asarray(d, np.float64)
  b, ho, wo, co = d.shape
  g = np.zeros((b, kh, kw, a.shape[-1], co))
  for p in range(ho):
    for q in range(wo):
      patch = a[:, p * strides[0]:p * strides[0] + kh, q * strides[1]:q * strides[1] + kw]
      g += np.einsum("bijc,bo->bijco", patch, d[:, p, q])
  return g


@pytest.mark.parametrize("form", ["gram", "full"])
@pytest.mark.parametrize("strides", [(1, 1), (2, 1)])
def test_conv_norm_forms_match_brute_force(form, strides):
  rng = np.random.default_rng(0)
  kh, kw, ci, co = 3, 2, 2, 3
  a = rng.normal(size=(2, 7, 6, ci)).astype(np.float32)
  ho, wo = (7 - kh) // strides[0] + 1, (6 - kw) // strides[1] + 1
  d = rng.normal(size=(2, ho, wo, co)).astype(np.float32)
  ref = _brute_kernel_grad(a, d, kh, kw, strides)
  prep = layers.prepare(jnp.asarray(a), (kh, kw, ci, co), strides, (ho, wo), form)
  got = layers.sq_norm(prep, jnp.asarray(d), (kh, kw, ci, co), strides, form)
  np.testing.assert_allclose(got, np.sum(ref ** 2, axis=(1, 2, 3, 4)), rtol=1e-5)
  v = rng.normal(size=(kh, kw, ci, co)).astype(np.float32)
  np.testing.assert_allclose(layers.dot(jnp.asarray(a), jnp.asarray(d), jnp.asarray(v), strides),
                             np.einsum("bijco,ijco->b", ref, v), rtol=1e-5)


def test_norm_form_picks_the_cheaper_one():
  assert layers.norm_form((1, 1, 784, 256), (1, 1)) == "gram"  # Dense on [B, d]
  assert layers.norm_form((4, 4, 32, 32), (22, 22)) == "full"  # Gal CNN conv2 on MNIST
  assert layers.norm_form((3, 3, 512, 512), (2, 2)) == "gram"  # late VGG block


class _SeqModel(nnx.Module):
  """Dense on [B, T, d] (positions), an unknown layer (LayerNorm) and a grouped
  conv the taps do not support: both must fall back to vmap(grad)."""

  def __init__(self, *, rngs):
    self.conv = nnx.Conv(2, 4, (2, 2), feature_group_count=2, rngs=rngs)
    self.norm = nnx.LayerNorm(4, rngs=rngs)
    self.seq = nnx.Linear(4, 5, rngs=rngs)
    self.head = nnx.Linear(5, NUM_CLASSES, rngs=rngs)
    self.embed_dim = 5

  def embed(self, x):
    h = self.norm(jax.nn.relu(self.conv(x)))          # [B, 3, 3, 4]
    h = jnp.tanh(self.seq(h.reshape(h.shape[0], -1, 4)))  # Dense over 9 positions
    return h.mean(1)

  def __call__(self, x, *, rngs=None):
    del rngs  # no dropout
    h = self.embed(x)
    return self.head(h), {"pre_logits": h, "stages": [h]}  # the models' (logits, out)


def test_positions_and_unknown_layers_fall_back_and_say_which(caplog):
  fns = models.functional(lambda rngs: _SeqModel(rngs=rngs))
  params, rest = fns.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (5, 4, 4, 2))
  y = jnp.arange(5) % NUM_CLASSES
  taps._WARNED.clear()
  with caplog.at_level(logging.INFO, logger="al_jax.per_example.taps"):
    got = jax.jit(lambda p: per_example.tap_grad_norms(fns, p, rest, x, y))(params)
  msg = " ".join(r.getMessage() for r in caplog.records)
  for name in ("conv.kernel", "conv.bias", "norm.scale", "norm.bias"):
    assert name in msg
  assert "seq.kernel" not in msg and "head.kernel" not in msg
  np.testing.assert_allclose(got, per_example.grad_norms(fns, params, rest, x, y, 2), rtol=1e-5)


def _loop_grads(fns, params, rest, x, y):
  grad = jax.jit(jax.grad(per_example.example_loss(fns)))
  return [grad(params, rest, x[i], y[i]) for i in range(x.shape[0])]


@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_projection_is_the_fixed_sketch_of_each_gradient(name):
  fns, params, rest, x, y = _model(name, n=3, pad=1)
  k = 64
  got = jax.jit(lambda p: per_example.grad_projections(fns, p, rest, x, y, k=k, seed=3))(params)
  kernels = fast.tapped_kernels(taps.forward(fns, params, rest, x))
  for i, g in enumerate(_loop_grads(fns, params, rest, x, y)):
    ref = fast.sketch_reference(g, kernels, k=k, seed=3)
    np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(ref))))


def test_projections_preserve_inner_products_within_the_sketch_error():
  fns, params, rest, x, y = _model("mlp", n=12, pad=0)
  k = 512
  g = np.stack([np.asarray(ravel_pytree(t)[0], np.float64)
                for t in _loop_grads(fns, params, rest, x, y)])
  errs = []
  for seed in range(4):
    pg = np.asarray(per_example.grad_projections(fns, params, rest, x, y, k=k, seed=seed),
                    np.float64)
    norms = np.linalg.norm(g, axis=1)
    errs.append((pg @ pg.T - g @ g.T) / np.outer(norms, norms))
  errs = np.stack(errs)
  # Standard deviation of each normalised error is at most 3 / sqrt(k)
  # (module docstring of per_example.fast); 48 x 78 draws.
  assert np.sqrt(np.mean(errs ** 2)) < 3 / np.sqrt(k)
  assert np.max(np.abs(errs)) < 5 * 3 / np.sqrt(k)
  # And the sketch is informative: a wrong one (independent seeds per row)
  # would not correlate with the true Gram matrix.
  assert np.corrcoef((pg @ pg.T).ravel(), (g @ g.T).ravel())[0, 1] > 0.9


def test_bfloat16_compute_keeps_the_layers_tapped():
  from al_jax import precision
  fns, params, rest, x, y = _model("cnn")
  fb = precision.with_compute_dtype(fns, "bfloat16")
  _, untapped = taps.discover(fb, params, rest, x[:1])
  names = taps.leaf_names(params)
  assert [names[i] for i in untapped] == ["conv1.bias", "conv2.bias"]  # as in float32
  got = jax.jit(lambda p: per_example.tap_grad_norms(fb, p, rest, x, y))(params)
  ref = per_example.grad_norms(fb, params, rest, x, y, 4)
  np.testing.assert_allclose(got, ref, rtol=5e-2)  # both bfloat16 networks


def test_predicted_labels_come_from_the_same_forward_pass():
  """y=None takes yhat = argmax f(x) inside the taps: norms, dot products and
  projections equal the explicit-label calls with yhat (and differ from
  the calls with other labels, so a wrong yhat would show)."""
  fns, params, rest, x, y = _model("mlp")
  yhat = jnp.argmax(fns.apply(params, rest, x)[0], -1)
  assert np.any(np.asarray(yhat) != np.asarray(y))
  got = jax.jit(lambda p: per_example.tap_grad_norms(fns, p, rest, x))(params)
  np.testing.assert_allclose(got, per_example.grad_norms(fns, params, rest, x, yhat, 4),
                             rtol=1e-5)
  v = jax.tree.map(lambda a: jnp.ones_like(a) * 0.1, params)
  for fn in (lambda yy: per_example.tap_loss_dot(fns, params, rest, x, yy, v),
             lambda yy: per_example.grad_projections(fns, params, rest, x, yy, k=8)):
    own, explicit, other = fn(None), fn(yhat), fn(y)
    np.testing.assert_allclose(own, explicit, rtol=1e-6, atol=1e-7)
    assert not np.allclose(own, other, rtol=1e-3)


def test_tapped_max_pool_and_conv_pull_back_like_the_model_ops():
  """The taps' own max pool (first maximum of a window takes the cotangent,
  with many equal values) and stride-1 conv (input gradient as a flipped-kernel
  convolution) give the values and gradients of nnx.max_pool / conv2d."""
  from al_jax.models import conv as conv_mod
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.integers(0, 3, (3, 7, 6, 2)).astype(np.float32))  # ties everywhere

  def tapped(fn):
    def run(*a):
      with taps.intercept(taps.Recorder(ids={})):
        return fn(*a)
    return run

  pool = lambda v: nnx.max_pool(v, (2, 2), strides=(2, 2))
  (y0, b0), (y1, b1) = jax.vjp(pool, x), jax.vjp(tapped(pool), x)
  g = jnp.asarray(rng.normal(size=y0.shape).astype(np.float32))
  np.testing.assert_array_equal(y1, y0)
  np.testing.assert_array_equal(b1(g)[0], b0(g)[0])
  for padding, k in (("VALID", 3), ("SAME", 4)):
    w = jnp.asarray(rng.normal(size=(k, k, 2, 3)).astype(np.float32))
    conv = lambda v, u: conv_mod.conv2d(v, u, padding)
    (y0, b0), (y1, b1) = jax.vjp(conv, x, w), jax.vjp(tapped(conv), x, w)
    g = jnp.asarray(rng.normal(size=y0.shape).astype(np.float32))
    np.testing.assert_allclose(y1, y0, rtol=1e-6)
    for u, v in zip(b1(g), b0(g)):
      np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_row_chunks_give_the_same_norms_on_one_and_eight_devices(devices, name):
  """Forced small chunks (3 rows of 16: padded, strided over the shards) equal
  one unchunked pass, also with the rows sharded over 8 devices: norms, class
  norms, dot products and projections."""
  fns, params, rest, x, y = _model(name, n=14, pad=2)
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)
  rows = NamedSharding(mesh, P("data"))

  v = jax.tree.map(lambda a: jnp.full_like(a, 0.1), params)

  def fn(r):
    return jax.jit(lambda p, x, y: (
        per_example.tap_grad_norms(fns, p, rest, x, y, rows=r),
        per_example.tap_class_grad_norms(fns, p, rest, x, rows=r),
        per_example.tap_loss_dot(fns, p, rest, x, y, v, rows=r),
        per_example.grad_projections(fns, p, rest, x, y, k=8, rows=r)))
  whole = fn(10 ** 6)(params, x, y)
  for got in (fn(3)(params, x, y), fn(3)(params, jax.device_put(x, rows), jax.device_put(y, rows))):
    for a, b in zip(got, whole):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert fast.chunk_rows(taps.discover(fns, params, rest, x[:1])[0], 10, 1 << 10) >= 1
