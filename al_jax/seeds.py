"""S runs of one config side by side: a leading seed axis on every per-run array.

`al.num_seeds = S` runs seeds seed .. seed+S-1 as one program. The round loop
(loop.py) is written once over a `SeedAxis`: every per-run device value
(parameters, optimiser and extension states, keys, labelled masks, the
pool and test set, which the seed splits differently) carries a leading
axis of S, and every jitted function is lifted over it by `SeedAxis.lift`.
A single run (S = 1) is the special case whose lift is the identity and
whose values carry no seed axis, so it compiles and computes exactly what
it always did. Host values (labelled masks, candidate rows) always carry
the axis: [S, N].

Two ways to lift (`al.seed_map`):
  "vmap": one batched program (batched matmuls): the fast one. On XLA:CPU
      its results equal the single runs' up to float rounding (measured:
      parameters within ~3e-8 after an epoch of the digits MLP), since the
      fused batched kernels sum in another order; selected ids agree unless
      a score sits within rounding noise of the selection boundary.
  "map": `lax.map` over the seeds inside each jitted call: each seed runs
      the single run's computation one after another with ordinary (not
      batched) kernels: training is bitwise equal to single fits
      (tests/test_seeds.py), evaluation and pool scoring inside the loop
      round differently (~1e-7 relative); one compile and one dispatch per
      call for all seeds. Faster than "vmap" for CNNs on a CPU, where vmap
      makes grouped convolutions (benchmarks/README.md).
A mesh axis named "seeds" (`mesh = [("seeds", 2), ("data", -1)]`) shards
the seed axis of every stacked value over devices (vmap only).
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from al_jax import sharding

SEEDS_AXIS = "seeds"
SEED_MAPS = ("vmap", "map")


class SeedAxis:
  """How the S runs of one program share values and jitted calls.

  Attributes:
    seeds: the S seed values (config.seed + s).
    stacked: False for a single run: values carry no seed axis, lift is the
      identity.
    mesh: the device mesh; its "seeds" axis (if any) shards the seed axis.
    mode: "vmap" or "map" (module docstring).
  """

  def __init__(self, first_seed: int, num_seeds: int, mesh, mode: str = "vmap"):
    if mode not in SEED_MAPS:
      raise ValueError(f"Unknown al.seed_map '{mode}'; known: {list(SEED_MAPS)}")
    self.seeds = [int(first_seed) + s for s in range(int(num_seeds))]
    self.stacked = len(self.seeds) > 1
    self.mesh = mesh
    self.mode = mode
    self.axis = SEEDS_AXIS if SEEDS_AXIS in mesh.axis_names else None
    shards = mesh.shape[SEEDS_AXIS] if self.axis else 1
    if len(self.seeds) % shards:
      raise ValueError(f"al.num_seeds={len(self.seeds)} must be a multiple of the mesh's "
                       f"'{SEEDS_AXIS}' axis ({shards} devices)")
    if self.axis and shards > 1 and mode != "vmap":
      raise ValueError(f"al.seed_map='{mode}' runs the seeds one after another and cannot "
                       f"spread them over the mesh's '{SEEDS_AXIS}' axis; use "
                       f"al.seed_map='vmap' or drop that axis from config.mesh")

  @property
  def size(self) -> int:
    return len(self.seeds)

  def label(self, s: int) -> str:
    """' (seed N)' for messages about one seed of several; '' for a single run."""
    return f" (seed {self.seeds[s]})" if self.stacked else ""

  # ---- jitted functions ----
  def lift(self, fn: Callable, in_axes: Sequence) -> Callable:
    """fn over the seed axis of the arguments whose in_axes entry is 0.

    Arguments with None are shared by every seed. Not jitted: callers jit
    the result (a single run gets `fn` itself back).
    """
    if not self.stacked:
      return fn
    in_axes = tuple(in_axes)
    if self.mode == "vmap":
      return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=self.axis)

    def mapped(*args):
      batched = [a for a, ax in zip(args, in_axes) if ax == 0]

      def one(per_seed):
        it = iter(per_seed)
        return fn(*(next(it) if ax == 0 else a for a, ax in zip(args, in_axes)))

      return jax.lax.map(one, batched)

    return mapped

  def lift_or_loop(self, name: str, fn: Callable, in_axes: Sequence) -> Callable:
    """`lift(fn)` jitted; if it cannot be traced batched, a loop over the seeds.

    The fallback (e.g. a strategy whose code needs concrete values) calls
    jitted `fn` once per seed and stacks the results; it says so in one log line.
    """
    single = jax.jit(fn)
    if not self.stacked:
      return single
    lifted = jax.jit(self.lift(fn, in_axes))
    state = {"loop": False}

    def call(*args):
      if not state["loop"]:
        try:
          return lifted(*args)
        except Exception as e:  # noqa: BLE001 -- any tracing failure means: loop instead.
          logging.warning("%s cannot be batched over seeds (%s: %s); looping over the %d "
                          "seeds instead", name, type(e).__name__, str(e).splitlines()[0][:120],
                          self.size)
          state["loop"] = True
      return self.loop(single, in_axes)(*args)

    return call

  def loop(self, fn: Callable, in_axes: Sequence) -> Callable:
    """fn called once per seed (host-side selections); results stacked."""
    if not self.stacked:
      return fn

    def looped(*args):
      outs = [fn(*(self.take(a, s) if ax == 0 else a for a, ax in zip(args, in_axes)))
              for s in range(self.size)]
      return self.stack(outs)

    return looped

  # ---- values ----
  def take(self, tree, s: int):
    """Seed s's slice of a stacked pytree (a single run's tree itself)."""
    return jax.tree.map(lambda a: a[s], tree) if self.stacked else tree

  def stack(self, trees: list):
    """The per-seed pytrees stacked on a new leading axis (a single run: trees[0])."""
    if not self.stacked:
      return trees[0]
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)

  def keys(self, fn: Callable):
    """fn(seed) for each seed, stacked (fn returns a pytree of keys)."""
    return self.stack([fn(s) for s in self.seeds])

  def params_sharding(self) -> NamedSharding:
    """Stacked per-run state: the seed axis over the "seeds" mesh axis, else replicated."""
    if self.stacked and self.axis:
      return NamedSharding(self.mesh, P(self.axis))
    return sharding.replicated(self.mesh)

  def put_state(self, tree):
    return jax.device_put(tree, self.params_sharding())

  def rows(self, a: np.ndarray) -> jax.Array:
    """Host [S, N, ...] -> device rows sharded over "data" (and seeds over "seeds").

    A single run gets `sharding.shard_rows(mesh, a[0])`, as always.
    """
    a = np.asarray(a)
    if not self.stacked:
      return sharding.shard_rows(self.mesh, a[0])
    spec = NamedSharding(self.mesh, P(self.axis, sharding.DATA_AXIS, *([None] * (a.ndim - 2))))
    # Every process holds the whole host array (each loads the same data).
    return jax.make_array_from_callback(a.shape, spec, lambda idx: a[idx])

  def to_host(self, x) -> np.ndarray:
    """Device value -> NumPy with the seed axis ([S, ...]) for every run."""
    out = sharding.to_host(x)
    return out if self.stacked else out[None]


def check_same_shapes(pools, tests) -> None:
  """Seeds split the data differently but must give equally sized arrays."""
  for what, arrs in (("pool", pools), ("test set", tests)):
    shapes = {tuple(a.shape) for a in arrs}
    if len(shapes) > 1:
      raise ValueError(f"al.num_seeds: the seeds give {what}s of different shapes {sorted(shapes)}; "
                       f"run the seeds one by one")
