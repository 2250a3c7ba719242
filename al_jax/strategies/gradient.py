"""Gradient-based strategies: EGL and BADGE.

EGL (expected gradient length; Settles, Craven & Ray 2008; Huang et al. 2016):
  score(x) = sum_c p(c|x) ||grad_theta CE(x, c)||_2
over ALL parameters, or over the last layer alone in closed form
(`last_layer=True`). The full network goes through the layer taps by default
(`path="taps"`: one forward and C backward passes of the batch,
per_example.tap_class_grad_norms); `path="vmap"` is the vmap(grad)
reference (examples x classes, microbatched). The L2 norm: the
small-text implementation sums |g| (an L1 norm) by mistake.

BADGE (Ash et al., ICLR 2020): the hallucinated last-layer gradient
g_x = (p - e_yhat) (x) h(x), yhat = argmax p, h = penultimate features, then
k-means++ seeding over the unlabelled rows: the first centre has the largest
||g||, each next one is drawn with probability proportional to D^2, D = the
distance to the nearest chosen centre. No Lloyd steps, the labelled set is
ignored, as in JordanAsh/badge `init_centers`.

Distances are never computed on the C*d-dimensional g: with q = p - e_yhat,
  ||g_i - g_j||^2 = ||q_i||^2 ||h_i||^2 + ||q_j||^2 ||h_j||^2
                    - 2 (q_i . q_j)(h_i . h_j),
so memory is O(N (d + C)) and each pick costs two matrix-vector products.
The D^2 loop is a lax.fori_loop over one [N] min-distance vector sharded with
the pool rows; D^2 sampling is Gumbel-max (argmax of log D^2 + Gumbel noise,
an exact categorical draw that needs no global cumsum). A chosen row leaves
the candidates, so ids are unique even when all remaining D are 0 (then the
draw is uniform among the remaining rows; the DAL+ copy hangs in pdb there).
"""

import jax
import jax.numpy as jnp

from al_jax import per_example
from al_jax.kernels.badge import kmeans_pp_gradient
from al_jax.strategies.base import Strategy, top_k


def egl_scores(fns, params, rest, x, *, last_layer: bool = False, bias: bool = True,
               microbatch_size: int = 16, path: str = "taps") -> jax.Array:
  """[B] expected gradient length sum_c p_c ||grad CE(x, c)||_2."""
  if last_layer:
    h, p = per_example.last_layer_inputs(fns, params, rest, x)
    norms = per_example.last_layer_class_grad_norms(h, p, bias)
  elif path == "taps":
    norms, p = per_example.tap_class_grad_norms(fns, params, rest, x, with_probs=True)
  else:
    p = jax.nn.softmax(fns.apply(params, rest, x)[0].astype(jnp.float32))
    norms = per_example.class_grad_norms(fns, params, rest, x, microbatch_size)
  return jnp.sum(p * norms, axis=-1)


def egl(fns, *, last_layer: bool = False, bias: bool = True,
        microbatch_size: int = 16, path: str = "taps") -> Strategy:
  """Expected gradient length, top-k.

  Args:
    fns: the model's `models.Functional`.
    last_layer: closed form over the head (W, b) only, instead of all
      parameters.
    bias: with last_layer, include the head bias gradient.
    microbatch_size: examples per vmap(grad) microbatch (path="vmap"); the
      peak memory is about microbatch_size x num_classes gradients.
    path: full network by "taps" (layer taps, the default) or "vmap"
      (vmap(grad), the reference); the scores agree to float error.
  """
  if microbatch_size < 1:
    raise ValueError(f"egl microbatch_size must be >= 1, got {microbatch_size}")
  if path not in per_example.PATHS:
    raise ValueError(f"egl path must be one of {list(per_example.PATHS)}, got {path!r}")

  def score(params, rest, batch, key, ext=None):
    del key, ext
    return egl_scores(fns, params, rest, batch["x"], last_layer=last_layer, bias=bias,
                      microbatch_size=microbatch_size, path=path)

  return Strategy(score, top_k())


def badge_factors(fns, params, rest, x, bias: bool = False):
  """{"h": [B, d], "q": [B, C]}: the gradient embedding g = q (x) h in factors.

  q = p - e_yhat is the gradient of CE(x, yhat) w.r.t. the logits (the
  reference uses e_yhat - p; the sign changes no distance). bias=True appends
  1 to h, adding the head bias gradient q to g (the reference leaves it out).
  """
  h, p = per_example.last_layer_inputs(fns, params, rest, x)
  q = p - jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype)
  if bias:
    h = jnp.concatenate([h, jnp.ones_like(h[:, :1])], axis=-1)
  return {"h": h, "q": q}


EMBEDDINGS = ("last_layer", "full_projected")


def full_projected_factors(fns, params, rest, x, k: int = 512, seed: int = 0):
  """{"h": [B, k], "q": [B, 1] of ones}: the seeded k-dimensional projection
  of the full-network gradient of CE(x, yhat) (per_example.grad_projections),
  in the factor form kmeans_pp_gradient takes (g = 1 (x) h)."""
  h = per_example.grad_projections(fns, params, rest, x, None, k=k, seed=seed)  # y = yhat
  return {"h": h, "q": jnp.ones((x.shape[0], 1), h.dtype)}


def badge(fns, *, bias: bool = False, embedding: str = "last_layer", k: int = 512,
          seed: int = 0) -> Strategy:
  """BADGE: k-means++ seeding on gradient embeddings.

  Args:
    fns: the model's `models.Functional`.
    bias: include the head-bias gradient in the embedding (reference: no;
      last_layer only).
    embedding: "last_layer" (the paper's hallucinated head gradient, exact
      factors) or "full_projected" (the full-network gradient of
      CE(x, yhat), sketched to k dimensions with a fixed seeded projection;
      distances are preserved up to the sketch's O(1/sqrt(k)) error).
    k: sketch dimension (full_projected). seed: the sketch's seed.
  """
  if embedding not in EMBEDDINGS:
    raise ValueError(f"badge embedding must be one of {list(EMBEDDINGS)}, got {embedding!r}")
  if k < 1:
    raise ValueError(f"badge k must be >= 1, got {k}")

  def score(params, rest, batch, key, ext=None):
    del key, ext
    if embedding == "full_projected":
      return full_projected_factors(fns, params, rest, batch["x"], k, seed)
    return badge_factors(fns, params, rest, batch["x"], bias)

  def select(feats, pool, budget, key, ext=None):
    del ext
    pos, dists = kmeans_pp_gradient(feats["h"], feats["q"], pool.unlabelled, budget, key)
    return pool.ids[pos], dists

  return Strategy(score, select)
