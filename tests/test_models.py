"""Models and their functional views."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import models

CASES = [("mlp", (8, 8, 1), dict(hidden=(16,), dropout=0.5)),
         ("cnn", (8, 8, 1), dict(filters=4, kernel_size=3, padding="SAME", dense=8)),
         ("cnn", (28, 28, 1), dict(filters=4, dense=8)),
         ("resnet18", (8, 8, 3), dict(width=4, dropout=0.5)),
         ("vgg16_bn", (32, 32, 3), dict(width_scale=1 / 16, dropout=0.5))]


@pytest.mark.parametrize("name,shape,kw", CASES)
def test_views_shapes_and_head_of_embed(name, shape, kw):
  fns = models.build(name, shape, 5, **kw)
  params, rest = models.jit_init(fns)(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (6,) + shape)
  logits, out = fns.apply(params, rest, x)
  h = out["pre_logits"]
  assert logits.shape == (6, 5) and h.shape == (6, fns.embed_dim)
  # Eval mode: the head applied to the embedding is the whole network.
  np.testing.assert_allclose(fns.head(params, rest, h), logits, rtol=1e-5, atol=1e-5)
  # Eval mode is deterministic; MC mode with dropout differs between keys.
  mc = [fns.apply_mc(params, rest, x, jax.random.key(k))[0] for k in (2, 3)]
  assert mc[0].shape == (6, 5)
  assert not np.allclose(mc[0], mc[1])


@pytest.mark.parametrize("name,shape,kw", CASES)
def test_mc_masks_do_not_depend_on_the_batch(name, shape, kw):
  fns = models.build(name, shape, 5, **kw)
  params, rest = models.jit_init(fns)(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (8,) + shape)
  key = jax.random.key(7)
  whole = fns.apply_mc(params, rest, x, key)[0]
  split = jnp.concatenate([fns.apply_mc(params, rest, x[:3], key)[0],
                           fns.apply_mc(params, rest, x[3:], key)[0]])
  reordered = fns.apply_mc(params, rest, x[::-1], key)[0][::-1]
  np.testing.assert_allclose(whole, split, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(whole, reordered, rtol=1e-5, atol=1e-5)


def test_train_view_updates_batch_norm_stats_and_eval_uses_them():
  fns = models.build("resnet18", (8, 8, 3), 3, width=4)
  params, rest = models.jit_init(fns)(jax.random.key(0))
  x = 3.0 + jax.random.normal(jax.random.key(1), (16, 8, 8, 3))
  before = fns.apply(params, rest, x)[0]
  _, new_rest = fns.apply_train(params, rest, x, jax.random.key(2))
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), rest, new_rest)
  assert any(jax.tree.leaves(changed))
  assert not np.allclose(fns.apply(params, new_rest, x)[0], before)


def test_init_depends_on_key_only():
  fns = models.build("mlp", (4,), 3, hidden=(8,))
  a, _ = models.jit_init(fns)(jax.random.key(0))
  b, _ = models.jit_init(fns)(jax.random.key(0))
  c, _ = models.jit_init(fns)(jax.random.key(1))
  assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert not all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_unknown_model():
  with pytest.raises(ValueError, match="Unknown model 'gpt'"):
    models.build("gpt", (4,), 3)


@pytest.mark.parametrize("padding,k,ci", [("VALID", 4, 1), ("VALID", 3, 5), ("SAME", 4, 3),
                                          ("SAME", 3, 2)])
def test_conv2d_matches_lax_values_and_gradients(padding, k, ci):
  """The CPU custom backward (shifted-view GEMMs, flipped-kernel conv) == XLA's autodiff."""
  from al_jax.models.conv import conv2d
  kx, kw, kd = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (3, 9, 8, ci))
  w = jax.random.normal(kw, (k, k, ci, 6))

  def ref(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  out = jax.jit(conv2d, static_argnums=2)(x, w, padding)
  np.testing.assert_allclose(out, ref(x, w), rtol=1e-5, atol=1e-5)
  dy = jax.random.normal(kd, out.shape)
  g = jax.jit(jax.grad(lambda x, w: jnp.sum(conv2d(x, w, padding) * dy), argnums=(0, 1)))(x, w)
  g_ref = jax.jit(jax.grad(lambda x, w: jnp.sum(ref(x, w) * dy), argnums=(0, 1)))(x, w)
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_cnn_conv_layers_equal_nnx_conv():
  """The CNN routes its nnx.Conv parameters through models.conv: same outputs."""
  from flax import nnx
  from al_jax.models.cnn import CNN
  for padding in ("VALID", "SAME"):
    m = CNN((12, 12, 2), 3, filters=4, kernel_size=3, padding=padding, dense=8,
            rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 12, 12, 2))
    np.testing.assert_allclose(m._conv(m.conv1, x), m.conv1(x), rtol=1e-5, atol=1e-5)


def test_conv2d_rejects_unknown_padding():
  from al_jax.models.conv import conv2d
  with pytest.raises(ValueError, match="'FULL'"):
    conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((2, 2, 1, 1)), "FULL")


def test_conv2d_forward_mode_and_hessian_vector_products():
  """jax.jvp and forward-over-reverse (ISAL's Hessian-vector products) work and match lax."""
  from al_jax.models.conv import conv2d
  kx, kw, kv = jax.random.split(jax.random.key(2), 3)
  x = jax.random.normal(kx, (2, 7, 7, 3))
  w = jax.random.normal(kw, (3, 3, 3, 4))
  v = jax.random.normal(kv, w.shape)

  def loss(conv):
    return lambda w: jnp.sum(jnp.tanh(conv(x, w)) ** 2)

  ref = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731
      x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  ours = lambda x, w: conv2d(x, w, "VALID")  # noqa: E731
  t, t_ref = (jax.jvp(loss(c), (w,), (v,))[1] for c in (ours, ref))
  np.testing.assert_allclose(t, t_ref, rtol=1e-4)
  hvp, hvp_ref = (jax.jvp(jax.grad(loss(c)), (w,), (v,))[1] for c in (ours, ref))
  np.testing.assert_allclose(hvp, hvp_ref, rtol=1e-4, atol=1e-4)


# The channels of each out["stages"] entry, as each architecture defines them.
STAGE_DIMS = {("mlp", (8, 8, 1)): (16,), ("cnn", (8, 8, 1)): (4, 4, 8),
              ("cnn", (28, 28, 1)): (4, 4, 8), ("resnet18", (8, 8, 3)): (4, 8, 16, 32),
              ("vgg16_bn", (32, 32, 3)): (4, 8, 16, 32, 32)}


@pytest.mark.parametrize("name,shape,kw", CASES)
def test_call_returns_logits_and_out(name, shape, kw):
  fns = models.get(name, shape, 5, **kw)
  params, rest = models.jit_init(fns)(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (6,) + shape)
  logits, out = fns.apply(params, rest, x)
  np.testing.assert_allclose(logits, jax.jit(fns.apply)(params, rest, x)[0], rtol=1e-5, atol=1e-6)
  assert out["pre_logits"].shape == (6, fns.embed_dim)
  assert [s.shape[-1] for s in out["stages"]] == list(STAGE_DIMS[name, shape])
  # Train mode from the same single pass: the same logits however often it
  # runs, and with dropout on, the train-mode embedding differs from the eval one.
  (t_logits, t_out), _ = fns.apply_train(params, rest, x, jax.random.key(2))
  np.testing.assert_allclose(t_logits, fns.apply_train(params, rest, x, jax.random.key(2))[0][0],
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(fns.head(params, rest, t_out["pre_logits"]), t_logits,
                             rtol=1e-4, atol=1e-4)
  if kw.get("dropout", 0) > 0:
    assert not np.allclose(t_out["pre_logits"], out["pre_logits"])
