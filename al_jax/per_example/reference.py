"""Per-example gradient maps shared by EGL, BADGE, GraNd and ISAL.

Every per-example gradient is reduced *inside* the vmap (to a norm or a dot
product), so a microbatch never holds more than `microbatch_size` (times the
class count for EGL) gradient pytrees at once; `sharding.chunked_map`
(strided) runs the microbatches one after another with `lax.map`.

Gradients are taken through `fns.apply` (eval mode: dropout off, BatchNorm on
its running statistics), so each example's gradient is independent of which
other rows share its batch.

What to use when (measured on the 2-core CPU, DESIGN.md and
benchmarks/README.md):
* a gradient-dot-vector for every example (ISAL's g_i . s): `loss_dot`, one
  forward-mode `jax.jvp` of the per-example loss vector, no per-example
  gradient at all;
* last-layer gradients (BADGE, EGL with last_layer=True): the closed forms of
  `last_layer_*`, since d CE / d(W, b) = (p - e_y) (x) [h, 1];
* full-network gradient norms (EGL, GraNd): `grad_norms` /
  `class_grad_norms`, vmap(grad) microbatched. On the 2-core CPU this ran at
  0.6-0.8x the speed of a Python loop of one jitted call per example (an MLP
  with 235k parameters, benchmarks/README.md); we keep it because it runs
  inside the jitted, sharded score function. Microbatch 16 was the fastest
  of 1 / 4 / 16 / 64.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from al_jax import sharding

Tree = object


def tree_sq_norm(tree: Tree) -> jax.Array:
  """sum of squares over all leaves (float32)."""
  return sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in jax.tree.leaves(tree))


def tree_dot(a: Tree, b: Tree) -> jax.Array:
  """<a, b> summed over all leaves (float32)."""
  return sum(jnp.sum(x.astype(jnp.float32) * y.astype(jnp.float32))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def example_loss(fns) -> Callable:
  """loss(params, rest, x, y) -> CE of ONE example x (no batch axis) with label y."""
  def loss(params, rest, x, y):
    logits = fns.apply(params, rest, x[None])[0][0].astype(jnp.float32)
    return -jax.nn.log_softmax(logits)[y]
  return loss


def batch_losses(fns, params, rest, x, y) -> jax.Array:
  """[B] per-example CE at params (eval mode)."""
  logits = fns.apply(params, rest, x)[0].astype(jnp.float32)
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]


def grad_norms(fns, params, rest, x, y, microbatch_size: int = 16) -> jax.Array:
  """[B] ||grad_theta CE(x_i, y_i)||_2 over ALL parameters (GraNd).

  vmap(grad) with the norm taken inside the vmap; microbatched.
  """
  grad = jax.grad(example_loss(fns))

  def one(xy):
    xi, yi = xy
    return jnp.sqrt(tree_sq_norm(grad(params, rest, xi, yi)))

  return sharding.chunked_map(jax.vmap(one), (x, y), microbatch_size, strided=True)


def class_grad_norms(fns, params, rest, x, microbatch_size: int = 16) -> jax.Array:
  """[B, C] ||grad_theta CE(x_i, c)||_2 over ALL parameters, for every class c.

  vmap over examples of vmap over classes; a microbatch holds
  microbatch_size x C gradients of the full network at once.
  """
  grad = jax.grad(example_loss(fns))
  classes = jnp.arange(fns.num_classes)

  def one(xi):
    return jax.vmap(lambda c: jnp.sqrt(tree_sq_norm(grad(params, rest, xi, c))))(classes)

  return sharding.chunked_map(jax.vmap(one), x, microbatch_size, strided=True)


def last_layer_inputs(fns, params, rest, x):
  """(h [B, d], probabilities [B, C]) in float32: what the last layer's
  gradients are made of."""
  h = fns.apply(params, rest, x)[1]["pre_logits"].astype(jnp.float32)
  p = jax.nn.softmax(fns.head(params, rest, h).astype(jnp.float32))
  return h, p


def last_layer_class_grad_norms(h: jax.Array, p: jax.Array, bias: bool = True) -> jax.Array:
  """[B, C] closed-form ||grad_(W, b) CE(x, c)||_2 of the head z = W h + b.

  grad_W = (p - e_c) (x) h and grad_b = p - e_c, so the squared norm is
  ||p - e_c||^2 (||h||^2 + 1) with ||p - e_c||^2 = ||p||^2 - 2 p_c + 1.
  bias=False leaves the "+ 1" (the bias gradient) out.
  """
  q2 = jnp.sum(p * p, -1, keepdims=True) - 2.0 * p + 1.0
  h2 = jnp.sum(h * h, -1, keepdims=True) + (1.0 if bias else 0.0)
  return jnp.sqrt(jnp.maximum(q2, 0.0) * h2)


def loss_dot(fns, params, rest, x, y, v: Tree) -> jax.Array:
  """[B] grad_theta CE(x_i, y_i) . v for every example: ONE jax.jvp of the
  per-example loss vector along v (forward mode; no per-example gradients)."""
  return jax.jvp(lambda p: batch_losses(fns, p, rest, x, y), (params,), (v,))[1]


def hvp(loss_fn: Callable, params: Tree, v: Tree) -> Tree:
  """Hessian-vector product H v of scalar loss_fn(params): forward-over-reverse
  (jax.jvp of jax.grad), one gradient's cost times a small constant."""
  return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]
