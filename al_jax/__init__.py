"""al_jax: deep active learning in JAX/Flax NNX.

`al_jax.select(name, budget, labelled=..., logits=... | mc_log_probs=... |
embeddings=...)` picks a batch from your own arrays (see `al_jax.api` and
docs/library.md); `al-jax run` / `python -m al_jax.main` runs whole experiments.
"""

__version__ = "0.1.0"


def __getattr__(name):
  # Lazy: `import al_jax` stays cheap and touches no JAX backend (main.py
  # must call jax.distributed.initialize() before anything else does).
  if name in ("select", "ARRAY_STRATEGIES"):
    from al_jax import api
    return getattr(api, name)
  raise AttributeError(f"module 'al_jax' has no attribute '{name}'")


__all__ = ["select", "ARRAY_STRATEGIES", "__version__"]
