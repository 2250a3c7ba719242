"""Model registry and the one bridge between NNX modules and pure JAX.

`functional(make)` returns a backbone's pure functions with params as
arguments, so the round loop and the strategies never touch NNX objects and
nothing recompiles when the parameters change; `pure(make)` gives the same
views of any module (the strategies' auxiliary networks).
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


class Pure(NamedTuple):
  """Pure views of any NNX module (backbone or auxiliary network).

  init(key) -> (params, rest)       rest: the non-parameter state (BatchNorm
                                    statistics); {} for a module without any
  apply(params, rest, *args, method=None, **kw) -> out
                                    eval mode (dropout off, BN frozen)
  apply_train(params, rest, *args, method=None, **kw) -> (out, new_rest)
                                    train mode (dropout on, BN on batch stats)
  apply_mc(params, rest, *args, method=None, **kw) -> out
                                    dropout on, BN frozen

  `method` is a function of the module (`VAE.encode`), default `__call__`;
  `kw` reaches it unchanged (dropout keys go in as `rngs`).
  """
  init: Callable
  apply: Callable
  apply_train: Callable
  apply_mc: Callable


class Functional(NamedTuple):
  """Pure views of one backbone (its `__call__` returns (logits, out), with
  out["pre_logits"] [B, D] and out["stages"]); consumers read embeddings and
  stage features from `out`.

  init(key) -> (params, rest)
  apply(params, rest, x) -> (logits, out)        eval mode
  apply_mc(params, rest, x, key) -> (logits, out)
                                                 dropout on, BN frozen; the same
                                                 mask for every example given key
  apply_train(params, rest, x, key) -> ((logits, out), new_rest)
                                                 dropout on, BN on batch statistics
  head(params, rest, h) -> logits                the last linear layer alone
  """
  init: Callable
  apply: Callable
  apply_mc: Callable
  apply_train: Callable
  head: Callable
  num_classes: int
  embed_dim: int


# The modes: (dropout deterministic, BatchNorm use_running_average).
MODES = {"eval": (True, True), "mc": (False, True), "train": (False, False)}


def jit_init(fns, **jit_kw) -> Callable:
  """`fns.init` as one cheaply compiled program (it runs once a round).

  Eagerly, a ResNet-18's init spends 24 s on CPU compiling one program per
  initialiser op; jitted, XLA's CPU optimiser takes 23 s, and 3.5 s at
  backend optimisation level 0, whose program still runs in well under a
  second. Other backends keep their defaults.
  """
  opts = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  return jax.jit(fns.init, compiler_options=opts, **jit_kw)


def _pure(make: Callable[[nnx.Rngs], nnx.Module]):
  """(abstract module, Pure views) of the module built by `make(rngs)`."""
  model = nnx.eval_shape(lambda: make(nnx.Rngs(0)))
  # Modes are static attributes set together on every Dropout and BatchNorm:
  # one graphdef per mode, built once.
  gd = {mode: nnx.split(nnx.view(model, deterministic=det, use_running_average=running,
                                 raise_if_not_found=False), nnx.Param, ...)[0]
        for mode, (det, running) in MODES.items()}

  def init(key):
    _, params, rest = nnx.split(make(nnx.Rngs(params=key)), nnx.Param, ...)
    return params, rest

  def call(mode, params, rest, args, method, kw):
    m = nnx.merge(gd[mode], params, rest)
    return m, (method or type(m).__call__)(m, *args, **kw)

  def apply(params, rest, *args, method=None, **kw):
    return call("eval", params, rest, args, method, kw)[1]

  def apply_mc(params, rest, *args, method=None, **kw):
    return call("mc", params, rest, args, method, kw)[1]

  def apply_train(params, rest, *args, method=None, **kw):
    # merge reuses the State's Variable objects and BatchNorm writes into
    # them: rebuild the tree first so the caller's `rest` is never mutated.
    m, out = call("train", params, jax.tree.map(lambda a: a, rest), args, method, kw)
    return out, nnx.split(m, nnx.Param, ...)[2]

  return model, Pure(init, apply, apply_train, apply_mc)


def pure(make: Callable[[nnx.Rngs], nnx.Module]) -> Pure:
  """The pure views of any NNX module built by `make(rngs)`: the one place
  NNX meets pure JAX (auxiliary networks: critics, loss modules, GCNs, VAEs)."""
  return _pure(make)[1]


def functional(make: Callable[[nnx.Rngs], nnx.Module]) -> Functional:
  """Builds a backbone's views from a constructor `make(rngs) -> module`."""
  model, views = _pure(make)

  def apply(params, rest, x):
    return views.apply(params, rest, x)

  def head(params, rest, h):
    return views.apply(params, rest, h, method=lambda m, h: m.head(h))

  def apply_mc(params, rest, x, key):
    # vmap over examples with an unbatched key: every example sees the same
    # dropout masks, so sample `key` is one fixed network (consistent MC
    # dropout) whatever the batch, shard or host.
    def one(xi):
      logits, out = views.apply_mc(params, rest, xi[None], rngs=nnx.Rngs(dropout=key))
      return jax.tree.map(lambda a: a[0], (logits, out))

    return jax.vmap(one)(x)

  def apply_train(params, rest, x, key):
    return views.apply_train(params, rest, x, rngs=nnx.Rngs(dropout=key))

  return Functional(views.init, apply, apply_mc, apply_train, head,
                    num_classes=int(model.head.out_features),
                    embed_dim=int(model.embed_dim))


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
