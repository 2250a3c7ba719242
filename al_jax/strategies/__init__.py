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


def check_mc_dropout(name: str, model_name: str, input_shape, num_classes: int,
                     **model_kw: Any) -> None:
  """Stops an MC-dropout strategy on a model whose dropout is off.

  With every dropout rate 0 the K "networks" are one network: BALD and
  variation ratios score float rounding noise and Bayesian LC / entropy
  silently become their deterministic versions.

  Args:
    name: strategy name.
    model_name, input_shape, num_classes, model_kw: the model as
      `models.build` takes it (only its abstract shape is built).
  Raises:
    ValueError naming the model fields to set, e.g. `--config.model.dropout=0.5`.
  """
  from flax import nnx  # Only this check needs NNX and the models here.
  from al_jax import models
  if name not in bayesian.MC_STRATEGIES:
    return
  ctor = models.MODELS[model_name]
  model = nnx.eval_shape(lambda: ctor(tuple(int(s) for s in input_shape), num_classes,
                                      rngs=nnx.Rngs(0), **model_kw))
  rates = [float(m.rate) for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Dropout)]
  if any(r > 0 for r in rates):
    return
  fields = [p for p in inspect.signature(type(model).__init__).parameters if "dropout" in p]
  if fields:
    fix = " or ".join(f"--config.model.{f}=0.5" for f in fields)
    hint = f"set {fix}"
  else:
    hint = "choose a model with dropout"
  raise ValueError(f"strategy '{name}' scores with MC dropout, but model "
                   f"'{type(model).__name__}' has no active dropout (rates {rates or 'none'}); "
                   f"{hint}")


__all__ = ["STRATEGIES", "PoolView", "Strategy", "check_mc_dropout", "get"]
