"""GCNAL: UncertainGCN and CoreGCN (Caramalau, Bhattarai & Kim, CVPR 2021).

Nodes are the scored rows (all labelled rows plus the unlabelled candidates:
set `al.subset_size` for the paper's random 10,000-row subset), with
L2-normalised penultimate features F. The graph is dense:
    A = F F^T - I,  each column divided by its sum,  then + I
(the reference's `aff_to_adj`). A 2-layer GCN, layer(H) = A (H W) + b,
    h = dropout(relu(layer1(F)))   (hidden 128, dropout 0.3 in training)
    s = sigmoid(layer2(h))         (one output: "labelled" probability)
is trained from scratch each round for `num_steps` full-graph Adam steps on
    -mean_L log s - lambda * mean_U log(1 - s)      (lambda = 1.2)
UncertainGCN queries the unlabelled nodes whose s is closest to s_margin
(0.1); CoreGCN runs k-center greedy (al_jax/kernels/kcenter.py) on h with the
labelled nodes as the initial centres.

Memory is O(M^2) for M nodes (the dense graph): keep M = subset_size +
labelled rows to a few tens of thousands on an accelerator.

Differences from the reference (razvancaramalau/Sequential-GCN-for-Active-
Learning `selection_methods.py`), each deliberate:
- Padding and non-candidate rows are cut out of the graph (zero rows and
  columns), and a zero column sum (an isolated node) is left unscaled rather
  than divided by 0.
- Adam's weight decay is the reference's L2 form (added to the gradient).
"""

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from al_jax import models
from al_jax.kernels import kcenter
from al_jax.kernels import topk
from al_jax.models.layers import torch_linear, uniform
from al_jax.strategies.base import Strategy


def normalized_adjacency(feats: jax.Array, mask: jax.Array) -> jax.Array:
  """Column-normalised cosine graph plus self loops, over rows with `mask`.

  Args:
    feats: [M, D] L2-normalised features. mask: [M] bool nodes in the graph.
  Returns:
    [M, M]; rows and columns of masked-out nodes are zero.
  """
  m = mask.astype(feats.dtype)
  eye = jnp.eye(feats.shape[0], dtype=feats.dtype)
  a = (feats @ feats.T - eye) * m[:, None] * m[None, :]
  col = jnp.sum(a, axis=0)
  a = a / jnp.where(col == 0, 1.0, col)[None, :]
  return a + eye * m[None, :]


class GCN(nnx.Module):
  """Two graph convolutions, layer(H) = A (H W) + b, with dropout on the
  hidden layer in training mode; U(+-1/sqrt(out_features)) init, as the
  reference's GraphConvolution."""

  def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.0, *, rngs: nnx.Rngs):
    self.layer1 = torch_linear(dim, hidden, fan=hidden, rngs=rngs)
    self.drop = nnx.Dropout(dropout)
    # The second bias is added after the propagation: A (h W2) + b2.
    self.layer2 = torch_linear(hidden, 1, fan=1, use_bias=False, rngs=rngs)
    self.bias2 = nnx.Param(uniform(1)(rngs.params(), (1,)))

  def __call__(self, adj: jax.Array, feats: jax.Array, *, adj_feats: jax.Array | None = None,
               rngs=None):
    """(logit of s [M], hidden features h [M, hidden]); `rngs`: the dropout key.

    A (F W1) is computed as (A F) W1: the features are fixed, so training
    passes `adj_feats` = A F once and no step pays an M x M x hidden product
    (the second layer's A (h W2) is a matrix-vector product).
    """
    af = adj @ feats if adj_feats is None else adj_feats
    h = jax.nn.relu(self.layer1(af))
    return (adj @ self.layer2(self.drop(h, rngs=rngs)) + self.bias2[...])[:, 0], h


@functools.lru_cache
def gcn_net(dim: int, hidden: int = 128, dropout: float = 0.0) -> models.Pure:
  """The GCN's pure views (params only: it has no other state)."""
  return models.pure(lambda rngs: GCN(dim, hidden, dropout, rngs=rngs))


def gcn_apply(net: models.Pure, g, adj, feats, key=None, adj_feats=None):
  """net's (logit [M], h [M, hidden]) with params g; with a key, in training
  mode (dropout mask from `key`)."""
  if key is None:
    return net.apply(g, {}, adj, feats, adj_feats=adj_feats)
  return net.apply_train(g, {}, adj, feats, adj_feats=adj_feats, rngs=key)[0]


def gcn_loss(logit, labelled, unlabelled, lam: float) -> jax.Array:
  """-mean_L log s - lam * mean_U log(1 - s), from logits (stable)."""
  lab, unl = labelled.astype(jnp.float32), unlabelled.astype(jnp.float32)
  l_term = jnp.sum(jax.nn.log_sigmoid(logit) * lab) / jnp.maximum(lab.sum(), 1.0)
  u_term = jnp.sum(jax.nn.log_sigmoid(-logit) * unl) / jnp.maximum(unl.sum(), 1.0)
  return -l_term - lam * u_term


def train_gcn(key, feats, pool, *, hidden, dropout, lam, lr, weight_decay, num_steps):
  """Trains the GCN on the pool graph; returns (params, adj, loss per step)."""
  feats = feats.astype(jnp.float32)
  adj = normalized_adjacency(feats, pool.valid)
  adj_feats = adj @ feats
  k_init, k_drop = jax.random.split(key)
  net = gcn_net(feats.shape[1], hidden, dropout)
  g, _ = net.init(k_init)
  tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(lr))

  def step(carry, t):
    g, opt = carry
    loss_fn = lambda g: gcn_loss(gcn_apply(net, g, adj, feats, jax.random.fold_in(k_drop, t),
                                           adj_feats)[0],
                                 pool.labelled, pool.unlabelled, lam)
    loss, grads = jax.value_and_grad(loss_fn)(g)
    updates, opt = tx.update(grads, opt, g)
    return (optax.apply_updates(g, updates), opt), loss

  (g, _), losses = jax.lax.scan(step, (g, tx.init(g)), jnp.arange(num_steps))
  return g, adj, losses


def _gcn_strategy(fns, kind, *, hidden, dropout, lam, lr, weight_decay, num_steps, s_margin,
                  block=256) -> Strategy:
  for name, v in (("dropout", dropout), ("lam", lam), ("lr", lr),
                  ("weight_decay", weight_decay)):
    if v < 0:
      raise ValueError(f"{kind} {name} must be >= 0, got {v}")
  if not dropout < 1:
    raise ValueError(f"{kind} dropout must be < 1, got {dropout}")
  if hidden < 1 or num_steps < 1:
    raise ValueError(f"{kind} hidden and num_steps must be >= 1, got {hidden}, {num_steps}")
  if not 0 <= s_margin <= 1:
    raise ValueError(f"{kind} s_margin must be in [0, 1], got {s_margin}")

  def score(params, rest, batch, key, ext=None):
    del key, ext
    h = fns.apply(params, rest, batch["x"])[1]["pre_logits"].astype(jnp.float32)
    # The reference L2-normalises (eps guards an all-zero ReLU feature row).
    return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)

  def select(feats, pool, budget, key, ext=None):
    del ext
    k_train, k_kc = jax.random.split(key)
    g, adj, _ = train_gcn(k_train, feats, pool, hidden=hidden, dropout=dropout, lam=lam, lr=lr,
                          weight_decay=weight_decay, num_steps=num_steps)
    logit, h = gcn_apply(gcn_net(feats.shape[1], hidden, dropout), g, adj,
                         feats.astype(jnp.float32))
    if kind == "uncertain_gcn":
      # Closest to the margin first: highest -|s - s_margin|.
      return topk.masked_top_k(-jnp.abs(jax.nn.sigmoid(logit) - s_margin), pool, budget)
    pos, dist = kcenter.k_center_greedy(h, pool.labelled & pool.valid, pool.unlabelled, budget,
                                        k_kc, block)
    return pool.ids[pos], dist

  return Strategy(score, select)


def uncertain_gcn(fns, *, hidden: int = 128, dropout: float = 0.3, lam: float = 1.2,
                  lr: float = 1e-3, weight_decay: float = 5e-4, num_steps: int = 200,
                  s_margin: float = 0.1) -> Strategy:
  """UncertainGCN: unlabelled nodes whose GCN score s is closest to `s_margin`.

  Args:
    fns: the model's `models.Functional`.
    hidden: GCN hidden width (paper: 128). dropout: on the hidden layer (0.3).
    lam: weight of the unlabelled term of the loss (1.2).
    lr, weight_decay: Adam settings (1e-3, 5e-4). num_steps: full-graph
      training steps per round (200).
    s_margin: the target confidence (0.1).
  """
  return _gcn_strategy(fns, "uncertain_gcn", hidden=hidden, dropout=dropout, lam=lam, lr=lr,
                       weight_decay=weight_decay, num_steps=num_steps, s_margin=s_margin)


def core_gcn(fns, *, hidden: int = 128, dropout: float = 0.3, lam: float = 1.2,
             lr: float = 1e-3, weight_decay: float = 5e-4, num_steps: int = 200,
             block: int = 256) -> Strategy:
  """CoreGCN: k-center greedy on the GCN's hidden features, labelled nodes as centres.

  Args are as `uncertain_gcn`; `block` is k-center's centre block size.
  """
  return _gcn_strategy(fns, "core_gcn", hidden=hidden, dropout=dropout, lam=lam, lr=lr,
                       weight_decay=weight_decay, num_steps=num_steps, s_margin=0.1,
                       block=block)
