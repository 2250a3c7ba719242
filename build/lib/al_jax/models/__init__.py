"""Model registry and the one bridge between NNX modules and pure JAX.

`functional(make)` returns pure functions with params as arguments, so the
round loop and the strategies never touch NNX objects and nothing recompiles
when the parameters change.
"""

import math
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from flax import nnx

from al_jax.models.cnn import CNN
from al_jax.models.mlp import MLP
from al_jax.models.resnet import ResNet18
from al_jax.models.vgg import VGG16BN


def _mlp(input_shape, num_classes, *, rngs, **kw):
  return MLP(math.prod(input_shape), num_classes, rngs=rngs, **kw)


MODELS: dict[str, Callable[..., nnx.Module]] = {
    "mlp": _mlp,
    "cnn": CNN,
    "resnet18": ResNet18,
    "vgg16_bn": VGG16BN,
}


class Functional(NamedTuple):
  """Pure views of one model architecture.

  init(key) -> (params, rest)
  apply(params, rest, x) -> logits            eval mode (dropout off, BN frozen)
  embed(params, rest, x) -> [B, D]            penultimate features, eval mode
  head(params, rest, h) -> logits             the last linear layer alone
  apply_mc(params, rest, x, key) -> logits    dropout on, BN frozen; the same
                                              mask for every example given key
  apply_train(params, rest, x, key) -> (logits, new_rest)
                                              dropout on, BN on batch statistics
  features(params, rest, x) -> (logits, [F_l])
                                              eval mode, plus the intermediate
                                              features of every stage/layer
                                              ([B, H, W, C] or [B, C]; LL4AL)
  features_train(params, rest, x, key) -> ((logits, [F_l]), new_rest)
                                              the same in apply_train's mode
  feature_dims: the channel count C of each F_l.
  The last three are None / () for models without a `features` method.
  """
  init: Callable
  apply: Callable
  embed: Callable
  head: Callable
  apply_mc: Callable
  apply_train: Callable
  num_classes: int
  embed_dim: int
  features: Callable | None = None
  features_train: Callable | None = None
  feature_dims: tuple = ()


def jit_init(fns: "Functional", **jit_kw) -> Callable:
  """`fns.init` as one cheaply compiled program (it runs once a round).

  Eagerly, a ResNet-18's init spends 24 s on CPU compiling one program per
  initialiser op; jitted, XLA's CPU optimiser takes 23 s, and 3.5 s at
  backend optimisation level 0, whose program still runs in well under a
  second. Other backends keep their defaults.
  """
  opts = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  return jax.jit(fns.init, compiler_options=opts, **jit_kw)


def functional(make: Callable[[nnx.Rngs], nnx.Module]) -> Functional:
  """Builds the pure views from a constructor `make(rngs) -> module`."""
  model = nnx.eval_shape(lambda: make(nnx.Rngs(0)))
  # Modes are static attributes: one graphdef per mode, built once.
  views = {}
  for mode, use_running in (("eval", True), ("train", False)):
    view = nnx.view(model, use_running_average=use_running, raise_if_not_found=False)
    views[mode] = nnx.split(view, nnx.Param, ...)[0]
  gd_eval, gd_train = views["eval"], views["train"]

  def init(key):
    _, params, rest = nnx.split(make(nnx.Rngs(params=key)), nnx.Param, ...)
    return params, rest

  def apply(params, rest, x):
    return nnx.merge(gd_eval, params, rest)(x)

  def embed(params, rest, x):
    return nnx.merge(gd_eval, params, rest).embed(x)

  def head(params, rest, h):
    return nnx.merge(gd_eval, params, rest).head(h)

  def apply_mc(params, rest, x, key):
    m = nnx.merge(gd_eval, params, rest)

    # vmap over examples with an unbatched key: every example sees the same
    # dropout masks, so sample `key` is one fixed network (consistent MC
    # dropout) whatever the batch, shard or host.
    def one(xi):
      return m(xi[None], rngs=nnx.Rngs(dropout=key))[0]

    return jax.vmap(one)(x)

  def apply_train(params, rest, x, key):
    # merge reuses the State's Variable objects and BatchNorm writes into
    # them: rebuild the tree first so the caller's `rest` is never mutated.
    m = nnx.merge(gd_train, params, jax.tree.map(lambda a: a, rest))
    logits = m(x, rngs=nnx.Rngs(dropout=key))
    _, _, new_rest = nnx.split(m, nnx.Param, ...)
    return logits, new_rest

  def features(params, rest, x):
    return nnx.merge(gd_eval, params, rest).features(x)

  def features_train(params, rest, x, key):
    # As apply_train: never mutate the caller's `rest`.
    m = nnx.merge(gd_train, params, jax.tree.map(lambda a: a, rest))
    out = m.features(x, rngs=nnx.Rngs(dropout=key))
    _, _, new_rest = nnx.split(m, nnx.Param, ...)
    return out, new_rest

  has_features = hasattr(model, "features")
  return Functional(init, apply, embed, head, apply_mc, apply_train,
                    num_classes=int(model.head.out_features),
                    embed_dim=int(model.embed_dim),
                    features=features if has_features else None,
                    features_train=features_train if has_features else None,
                    feature_dims=tuple(getattr(model, "feature_dims", ())))


def build(name: str, input_shape, num_classes: int, **kw: Any) -> Functional:
  """Looks up `name` in MODELS and returns its functional views."""
  if name not in MODELS:
    raise ValueError(f"Unknown model '{name}'; known: {sorted(MODELS)}")
  ctor = MODELS[name]
  input_shape = tuple(int(s) for s in input_shape)
  return functional(lambda rngs: ctor(input_shape, num_classes, rngs=rngs, **kw))


def num_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
