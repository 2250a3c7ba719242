"""Run-to-run identical results on GPUs: `config.deterministic = True`.

On CPU and TPU, XLA's programs give the same bits every run. On GPUs some
kernels do not: atomics in scatter-adds and reductions (e.g. the gradients
of gathers and of the embedding-like `x[idx]` in every training step) and
cuDNN/cuBLAS algorithms picked by run-time autotuning. Training then drifts
by a few ulps per step and, after hundreds of steps, a different set of ids
can be selected. XLA's flag `--xla_gpu_deterministic_ops=true` swaps those
for deterministic kernels (and makes autotuning choose deterministically).
The cost is measured by benchmarks/device_check.py (section "determinism").

XLA reads XLA_FLAGS once, when JAX starts its backends, so the flag must be
set before the first JAX computation: `al_jax.main` calls `apply` before
anything else; `loop.run` calls `check`, which sets it if JAX has not
started yet and fails with one clear error if a GPU backend already runs
without it.
"""

import os

FLAGS = ("--xla_gpu_deterministic_ops=true",)


def _has_flags() -> bool:
  current = os.environ.get("XLA_FLAGS", "").split()
  return all(f in current for f in FLAGS)


def apply(deterministic: bool) -> None:
  """Adds FLAGS to XLA_FLAGS (before JAX starts its backends)."""
  if deterministic and not _has_flags():
    current = os.environ.get("XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join(current + [f for f in FLAGS if f not in current])


def check(config) -> None:
  """Applies `config.deterministic`, or fails if it is too late to on a GPU."""
  if not bool(config.get("deterministic", False)) or _has_flags():
    return
  from jax._src import xla_bridge  # Private, but the only way to ask without starting JAX.
  if not xla_bridge.backends_are_initialized():
    apply(True)
    return
  import jax
  if jax.default_backend() == "gpu":
    raise ValueError(
        "config.deterministic=True, but JAX already runs on the GPU without "
        f"{' '.join(FLAGS)}; set XLA_FLAGS='{' '.join(FLAGS)}' before starting Python "
        "(or call al_jax.determinism.apply(True) before any JAX computation)")
  # CPU/TPU: deterministic already, nothing to set.
