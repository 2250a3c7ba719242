"""Per-example gradient maps against per-example Python loops of jax.grad."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from al_jax import models, per_example, sharding


@pytest.fixture(scope="module")
def mlp():
  fns = models.build("mlp", (4,), 3, hidden=(5,))
  params, rest = fns.init(jax.random.key(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32))
  return fns, params, rest, x


@pytest.fixture(scope="module")
def cnn():
  fns = models.build("cnn", (6, 6, 1), 3, filters=2, kernel_size=2, dense=4)
  params, rest = fns.init(jax.random.key(1))
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 6, 6, 1)).astype(np.float32))
  return fns, params, rest, x


@functools.lru_cache
def _jit_grad(fns):
  return jax.jit(jax.grad(per_example.example_loss(fns)))  # compiled once per model


def loop_grads(fns, params, rest, x, y):
  """One jax.grad call per example: the slow reference."""
  return [_jit_grad(fns)(params, rest, x[i], y[i]) for i in range(len(y))]


def flat(tree):
  return np.asarray(ravel_pytree(tree)[0], np.float64)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_grad_norms_match_a_loop(model, request):
  fns, params, rest, x = request.getfixturevalue(model)
  y = jnp.arange(x.shape[0]) % 3
  ref = [np.linalg.norm(flat(g)) for g in loop_grads(fns, params, rest, x, y)]
  got = jax.jit(lambda p, x, y: per_example.grad_norms(fns, p, rest, x, y, 3))(params, x, y)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_class_grad_norms_match_a_loop(mlp):
  fns, params, rest, x = mlp
  ref_c = np.stack([[np.linalg.norm(flat(g)) for g in
                     loop_grads(fns, params, rest, x, jnp.full(x.shape[0], c))]
                    for c in range(3)], axis=1)
  got_c = jax.jit(lambda p, x: per_example.class_grad_norms(fns, p, rest, x, 2))(params, x)
  np.testing.assert_allclose(got_c, ref_c, rtol=1e-5)


@pytest.mark.parametrize("strided", [True, False])
def test_chunked_map_keeps_row_order_for_any_size(strided):
  # The per-example microbatches (strided) and every other chunked map.
  x = jnp.arange(11.0)[:, None] * jnp.ones((1, 3))
  for m in (1, 2, 4, 11, 50):
    out = sharding.chunked_map(lambda a: a.sum(-1) + 0 * a[:, 0], x, m, strided=strided)
    np.testing.assert_array_equal(out, 3 * np.arange(11.0))
  with pytest.raises(ValueError, match="chunk size"):
    sharding.chunked_map(lambda a: a, x, 0, strided=strided)


@pytest.mark.parametrize("bias", [True, False])
def test_last_layer_closed_form_matches_autodiff(mlp, bias):
  fns, params, rest, x = mlp
  h, p = per_example.last_layer_inputs(fns, params, rest, x)
  got = per_example.last_layer_class_grad_norms(h, p, bias)
  for c in range(3):
    for i, g in enumerate(loop_grads(fns, params, rest, x, jnp.full(x.shape[0], c))):
      head = [g["head"]["kernel"]] + ([g["head"]["bias"]] if bias else [])
      np.testing.assert_allclose(got[i, c], np.linalg.norm(flat(head)), rtol=1e-5)


def test_loss_dot_is_the_per_example_gradient_dot_v(mlp):
  fns, params, rest, x = mlp
  y = jnp.array([0, 1, 2, 2, 1, 0, 1])
  v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(a.size), a.shape), params)
  got = jax.jit(lambda p, v: per_example.loss_dot(fns, p, rest, x, y, v))(params, v)
  ref = [flat(g) @ flat(v) for g in loop_grads(fns, params, rest, x, y)]
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_hvp_matches_the_explicit_hessian(mlp):
  fns, params, rest, x = mlp
  y = jnp.array([0, 1, 2, 2, 1, 0, 1])
  theta, unravel = ravel_pytree(params)

  def loss(p):
    return jnp.mean(per_example.batch_losses(fns, p, rest, x, y))

  hess = np.asarray(jax.jit(jax.hessian(lambda t: loss(unravel(t))))(theta), np.float64)
  v = jax.random.normal(jax.random.key(3), theta.shape)
  got = flat(jax.jit(lambda p, v: per_example.hvp(loss, p, v))(params, unravel(v)))
  np.testing.assert_allclose(got, hess @ np.asarray(v, np.float64), rtol=1e-4, atol=1e-6)
