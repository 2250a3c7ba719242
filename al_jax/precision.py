"""Mixed precision at the one boundary where parameters meet inputs.

`with_compute_dtype(fns, "bfloat16")` returns the same `models.Functional`
whose views cast the parameters and the input to bfloat16 on the way in
and every floating output (logits and the whole `out`: embeddings, stages) back to float32
on the way out. So:

- parameters, BatchNorm statistics and optimiser state stay float32 (the
  cast sits inside the differentiated function: gradients arrive float32);
- the network's matmuls and convolutions run in bfloat16 (on GPUs/TPUs the
  fast path: about 2x the float32 throughput and half the activation memory);
- losses, softmaxes, log-probabilities and everything a strategy computes
  from the outputs stay float32, because the outputs are float32.

Every caller (training, evaluation, every strategy's scoring) goes through
`fns`, so one wrapper covers them all; "float32" returns `fns` unchanged.
"""

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16")


def check_dtype(name: str) -> None:
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"Unknown train.compute_dtype '{name}'; known: {list(COMPUTE_DTYPES)}")


def _cast_floats(tree, dtype):
  return jax.tree.map(
      lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a,
      tree)


def _like(tree, ref):
  """`tree` cast leaf-wise to the dtypes of `ref` (BatchNorm stats stay float32)."""
  return jax.tree.map(lambda a, r: a.astype(jnp.result_type(r)), tree, ref)


def with_compute_dtype(fns, dtype: str):
  """`fns` with its network computing in `dtype` ("float32" | "bfloat16").

  Args:
    fns: a `models.Functional`.
    dtype: the compute dtype name.

  Returns:
    A `models.Functional` with the same signatures; init is untouched.
  """
  check_dtype(dtype)
  if dtype == "float32":
    return fns
  cdt = jnp.dtype(dtype)
  f32 = jnp.float32

  def inputs(params, x):
    # Integer inputs (uint8 pools normalise before reaching here) pass as-is.
    return _cast_floats(params, cdt), _cast_floats(x, cdt)

  def apply(params, rest, x):
    p, x = inputs(params, x)
    return _cast_floats(fns.apply(p, rest, x), f32)

  def head(params, rest, h):
    p, h = inputs(params, h)
    return _cast_floats(fns.head(p, rest, h), f32)

  def apply_mc(params, rest, x, key):
    p, x = inputs(params, x)
    return _cast_floats(fns.apply_mc(p, rest, x, key), f32)

  def apply_train(params, rest, x, key):
    p, x = inputs(params, x)
    out, new_rest = fns.apply_train(p, rest, x, key)
    # The epoch loop carries `rest`: its dtypes must not change.
    return _cast_floats(out, f32), _like(new_rest, rest)

  return fns._replace(apply=apply, head=head, apply_mc=apply_mc, apply_train=apply_train)
