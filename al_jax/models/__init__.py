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

  Every view runs the module's one `__call__`, which returns (logits, out)
  with out["pre_logits"] [B, D] and out["stages"]; the views differ only in
  mode, chosen in one place (`functional`, through `nnx.view`).

  init(key) -> (params, rest)
  apply(params, rest, x) -> logits            eval mode (dropout off, BN frozen)
  embed(params, rest, x) -> [B, D]            out["pre_logits"], eval mode
  head(params, rest, h) -> logits             the last linear layer alone
  apply_mc(params, rest, x, key) -> logits    dropout on, BN frozen; the same
                                              mask for every example given key
  apply_train(params, rest, x, key) -> (logits, new_rest)
                                              dropout on, BN on batch statistics
  features(params, rest, x) -> (logits, out)  eval mode, with the whole `out`
  features_train(params, rest, x, key) -> ((logits, out), new_rest)
                                              the same in apply_train's mode (one
                                              forward pass gives the train-mode
                                              logits and embedding: WAAL, LL4AL)
  feature_dims: the channel count of each out["stages"] entry.
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


# The modes: (dropout deterministic, BatchNorm use_running_average).
MODES = {"eval": (True, True), "mc": (False, True), "train": (False, False)}


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
  # Modes are static attributes set together on every Dropout and BatchNorm:
  # one graphdef per mode, built once.
  gd = {mode: nnx.split(nnx.view(model, deterministic=det, use_running_average=running,
                                 raise_if_not_found=False), nnx.Param, ...)[0]
        for mode, (det, running) in MODES.items()}

  def init(key):
    _, params, rest = nnx.split(make(nnx.Rngs(params=key)), nnx.Param, ...)
    return params, rest

  def features(params, rest, x):
    return nnx.merge(gd["eval"], params, rest)(x)

  def apply(params, rest, x):
    return features(params, rest, x)[0]

  def embed(params, rest, x):
    return features(params, rest, x)[1]["pre_logits"]

  def head(params, rest, h):
    return nnx.merge(gd["eval"], params, rest).head(h)

  def apply_mc(params, rest, x, key):
    m = nnx.merge(gd["mc"], params, rest)

    # vmap over examples with an unbatched key: every example sees the same
    # dropout masks, so sample `key` is one fixed network (consistent MC
    # dropout) whatever the batch, shard or host.
    def one(xi):
      return m(xi[None], rngs=nnx.Rngs(dropout=key))[0][0]

    return jax.vmap(one)(x)

  def features_train(params, rest, x, key):
    # merge reuses the State's Variable objects and BatchNorm writes into
    # them: rebuild the tree first so the caller's `rest` is never mutated.
    m = nnx.merge(gd["train"], params, jax.tree.map(lambda a: a, rest))
    logits_out = m(x, rngs=nnx.Rngs(dropout=key))
    _, _, new_rest = nnx.split(m, nnx.Param, ...)
    return logits_out, new_rest

  def apply_train(params, rest, x, key):
    (logits, _), new_rest = features_train(params, rest, x, key)
    return logits, new_rest

  return Functional(init, apply, embed, head, apply_mc, apply_train,
                    num_classes=int(model.head.out_features),
                    embed_dim=int(model.embed_dim),
                    features=features, features_train=features_train,
                    feature_dims=tuple(getattr(model, "feature_dims", ())))


def get(name: str, input_shape, num_classes: int, **kw: Any) -> Functional:
  """Looks up `name` in MODELS and returns its functional views.

  The same verb as `strategies.get(name, fns, **kw)`: unknown names fail
  with the list of known ones.
  """
  if name not in MODELS:
    raise ValueError(f"Unknown model '{name}'; known: {sorted(MODELS)}")
  ctor = MODELS[name]
  input_shape = tuple(int(s) for s in input_shape)
  return functional(lambda rngs: ctor(input_shape, num_classes, rngs=rngs, **kw))


# The earlier name, kept so callers written before the rename still work.
build = get


def num_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
