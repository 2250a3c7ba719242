"""al_jax: deep active learning in JAX/Flax NNX."""

__version__ = "0.1.0"
