"""The explicit strategy registry.

Each entry is a factory `factory(fns, **kw) -> Strategy` closing over its
hyperparameters; `fns` is the model's `models.Functional`.
"""

import inspect
from typing import Any, Callable

from al_jax.strategies import baselines, diversity, uncertainty
from al_jax.strategies import cluster_margin, probcover, typiclust
from al_jax.strategies import alfa_mix, dfal, waal
from al_jax.strategies import batchbald, bayesian
from al_jax.strategies import data_diet, forgetting, gradient, isal
from al_jax.strategies import gcn, ll4al, vaal
from al_jax.strategies.base import PoolView, Strategy

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": baselines.random,
    "least_confidence": uncertainty.least_confidence,
    "entropy": uncertainty.entropy,
    "margin": uncertainty.margin,
    "coreset": diversity.coreset,
    "coreset_mip": diversity.coreset_mip,
    "kmeans": diversity.kmeans,
    "typiclust": typiclust.typiclust,
    "probcover": probcover.probcover,
    "cluster_margin": cluster_margin.cluster_margin,
    "dfal": dfal.dfal,
    "alfa_mix": alfa_mix.alfa_mix,
    "waal": waal.waal,
    "bayesian_lc": bayesian.bayesian_lc,
    "bayesian_entropy": bayesian.bayesian_entropy,
    "bald": bayesian.bald,
    "variation_ratios": bayesian.variation_ratios,
    "mean_std": bayesian.mean_std,
    "power_bald": bayesian.power_bald,
    "power_entropy": bayesian.power_entropy,
    "batchbald": batchbald.batchbald,
    "egl": gradient.egl,
    "badge": gradient.badge,
    "grand": data_diet.grand,
    "el2n": data_diet.el2n,
    "forgetting": forgetting.forgetting,
    "isal": isal.isal,
    "ll4al": ll4al.ll4al,
    "uncertain_gcn": gcn.uncertain_gcn,
    "core_gcn": gcn.core_gcn,
    "vaal": vaal.vaal,
    "sraal": vaal.sraal,
    "ta_vaal": vaal.ta_vaal,
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
