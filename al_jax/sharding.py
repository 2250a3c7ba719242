"""Device mesh and shardings.

One mesh built from `config.mesh` (a list of (axis name, size) pairs; -1 means
"all remaining devices"). The pool and training batches are sharded over the
`data` axis; parameters are replicated.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(axes: Sequence[tuple[str, int]] = (("data", -1),)) -> Mesh:
  """Builds a mesh from (name, size) pairs; one size may be -1."""
  axes = [tuple(a) for a in axes]
  names = [str(a[0]) for a in axes]
  sizes = [int(a[1]) for a in axes]
  n = jax.device_count()
  if sizes.count(-1) > 1:
    raise ValueError(f"config.mesh may hold at most one -1 size, got {axes}")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if n % known:
      raise ValueError(f"config.mesh {axes}: {n} devices not divisible by {known}")
    sizes[sizes.index(-1)] = n // known
  need = int(np.prod(sizes))
  if need > n or (need < n and jax.process_count() > 1):
    raise ValueError(f"config.mesh {axes} needs {need} devices, but {n} are available")
  if DATA_AXIS not in names:
    raise ValueError(f"config.mesh {axes} must have a '{DATA_AXIS}' axis")
  # A smaller mesh (single process) takes the first devices: handy to compare
  # 1 device with 8 in one process. Recent JAX defaults to Explicit axes; we
  # rely on jit's automatic sharding, hence Auto.
  return jax.make_mesh(sizes, names, axis_types=(AxisType.Auto,) * len(names),
                       devices=jax.devices()[:need])


def data_sharding(mesh: Mesh, ndim: int = 1) -> NamedSharding:
  """Leading axis sharded over `data`, the rest replicated."""
  return NamedSharding(mesh, P(DATA_AXIS, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def num_data_shards(mesh: Mesh) -> int:
  return mesh.shape[DATA_AXIS]


def process_rows(mesh: Mesh, num_rows: int) -> slice:
  """The contiguous block of global rows this process's devices hold.

  With the leading axis sharded over `data`, each process's addressable
  devices own one contiguous block (jax.make_mesh orders devices by process).
  """
  idx = data_sharding(mesh).addressable_devices_indices_map((num_rows,)).values()
  starts = [i[0].indices(num_rows)[0] for i in idx]
  stops = [i[0].indices(num_rows)[1] for i in idx]
  lo, hi = min(starts), max(stops)
  # Replicated over other mesh axes, a process may hold some rows twice;
  # the block must still be exactly what its devices cover.
  covered = sum(b - a for a, b in {(a, b) for a, b in zip(starts, stops)})
  if covered != hi - lo:
    raise ValueError(f"process {jax.process_index()} holds non-contiguous rows of a "
                     f"{num_rows}-row array on mesh {dict(mesh.shape)}")
  return slice(lo, hi)


def shard_rows(mesh: Mesh, x: np.ndarray) -> jax.Array:
  """Lifts a host array to a global array sharded by rows.

  Every process loads the same pool in the same order, so each one passes
  only the block of rows its own devices hold to
  `jax.make_array_from_process_local_data`; no host ever ships rows to
  another.
  """
  x = np.asarray(x)
  sharding = data_sharding(mesh, x.ndim)
  local = x[process_rows(mesh, x.shape[0])]
  return jax.make_array_from_process_local_data(sharding, local, x.shape)


def to_host(x: jax.Array) -> np.ndarray:
  """The whole array as NumPy on every process (gathers across hosts)."""
  if jax.process_count() == 1 or x.is_fully_addressable:
    return np.asarray(x)
  from jax.experimental import multihost_utils  # Multi-host only.
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def replicate(mesh: Mesh, tree):
  """Places a host pytree (identical on every process) replicated on `mesh`."""
  sharding = replicated(mesh)
  return jax.tree.map(
      lambda a: jax.make_array_from_callback(np.shape(a), sharding,
                                             lambda idx: np.asarray(a)[idx]),
      tree)


def row(a, i):
  """a[i] for a traced scalar i, written as a gather rather than a dynamic
  slice: with `a` sharded by rows, XLA partitions a gather into a local
  masked lookup plus an all-reduce of one row, whereas a dynamic slice
  all-gathers the whole array (measured in the compiled HLO: [N, D] every
  pick; tests/test_kcenter.py checks it stays out)."""
  return jnp.take(a, jnp.reshape(i, (1,)), axis=0, mode="clip")[0]


def constrain_rows(a: jax.Array) -> jax.Array:
  """Shards a batch's rows over `data` when traced under `jax.set_mesh(mesh)`.

  For code without a mesh argument (strategy selects: loop.run traces them
  inside `jax.set_mesh`): rows gathered from a sharded pool (`x[rows]`) are
  otherwise free to land replicated, and every device would then run the
  whole minibatch. Without a mesh in context, or with rows that do not
  split evenly, `a` is returned unchanged.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA_AXIS not in mesh.axis_names or a.shape[0] % mesh.shape[DATA_AXIS]:
    return a
  return jax.lax.with_sharding_constraint(a, P(DATA_AXIS, *([None] * (a.ndim - 1))))


def chunked_map(fn, tree, chunk: int, mesh: Mesh | None = None, *, strided: bool = False):
  """fn over row chunks of `tree`, one chunk after another (`lax.map`).

  Bounds peak memory to one chunk's worth of fn's intermediates. Rows are
  padded to a multiple of the chunk size with copies of row 0 (so fn never
  sees made-up values) and the padding is cut from the output.

  Args:
    fn: maps a pytree of [m, ...] rows to a pytree of [m, ...] rows.
    tree: inputs, leading axis n.
    chunk: static rows per call, >= 1 (capped at n).
    mesh: each chunk's rows, fn's outputs and the result are constrained to
      the `data` axis: every device works on its slice of every chunk (the
      pool and test-set scoring).
    strided: chunk j takes rows j, j + nb, j + 2 nb, ... (nb chunks): with
      rows sharded over devices in contiguous blocks, every chunk then spans
      all shards without moving rows (the per-example gradient microbatches).
  Returns:
    fn's outputs for all n rows, in row order.
  """
  if chunk < 1:
    raise ValueError(f"chunk size must be >= 1, got {chunk}")
  n = jax.tree.leaves(tree)[0].shape[0]
  m = max(1, min(int(chunk), n))
  nb = -(-n // m)
  pad = nb * m - n

  def constrain(t, spec_prefix):
    if mesh is None:
      return t
    return jax.tree.map(
        lambda a: jax.lax.with_sharding_constraint(
            a, NamedSharding(mesh, P(*spec_prefix, *([None] * (a.ndim - len(spec_prefix)))))),
        t)

  def split(a):
    if pad:
      a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])])
    if strided:
      return a.reshape((m, nb) + a.shape[1:]).swapaxes(0, 1)
    return a.reshape((nb, m) + a.shape[1:])

  def join(a):
    a = a.swapaxes(0, 1) if strided else a
    a = a.reshape((nb * m,) + a.shape[2:])
    return a[:n] if pad else a

  out = jax.lax.map(lambda b: constrain(fn(b), (DATA_AXIS,)),
                    constrain(jax.tree.map(split, tree), (None, DATA_AXIS)))
  return constrain(jax.tree.map(join, out), (DATA_AXIS,))
