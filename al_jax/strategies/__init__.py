"""The explicit strategy registry.

Each entry is a factory `factory(fns, **kw) -> Strategy` closing over its
hyperparameters; `fns` is the model's `models.Functional`.
"""

import inspect
from typing import Any, Callable

from al_jax.strategies import baselines, diversity, uncertainty
from al_jax.strategies.base import PoolView, Strategy

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": baselines.random,
    "least_confidence": uncertainty.least_confidence,
    "entropy": uncertainty.entropy,
    "margin": uncertainty.margin,
    "coreset": diversity.coreset,
}


def get(name: str, fns, **kw: Any) -> Strategy:
  """Builds strategy `name`; unknown names and keywords fail loudly."""
  if name not in STRATEGIES:
    raise ValueError(f"Unknown strategy '{name}'; known: {sorted(STRATEGIES)}")
  factory = STRATEGIES[name]
  params = inspect.signature(factory).parameters
  accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
  unknown = [k for k in kw if k not in params or k == "fns"]
  if unknown and not accepts_any:
    known = [k for k in params if k != "fns"]
    raise ValueError(f"Strategy '{name}' got unknown options {unknown}; "
                     f"it accepts {known}")
  return factory(fns, **kw)


__all__ = ["STRATEGIES", "PoolView", "Strategy", "get"]
