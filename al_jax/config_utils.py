"""Strategy keywords in configs: every keyword listed, overrides checked.

Every config's `strategy.kw` lists each keyword of its strategy's factory
with its value (configs/common.py fills the defaults), so
`--config.strategy.kw.NAME=VALUE` overrides any of them. `resolve` is the
one step that reconciles a config with its command-line overrides: when
`--config.strategy.name` picks another strategy, the file's kw (written for
its own strategy) is replaced by the new strategy's defaults plus the
command line's `strategy.kw.*` values; an unknown field or keyword is one
ValueError naming it and what is accepted.
"""

import importlib.util
import inspect
from typing import Any, Mapping

import ml_collections

_KW = "strategy.kw."


def factory_kw(name: str) -> dict[str, Any]:
  """Every keyword of strategy `name`'s factory with its default (`fns` skipped).

  Args:
    name: a key of `al_jax.strategies.STRATEGIES`.

  Returns:
    {keyword: default}, in the factory's order.
  """
  from al_jax.strategies import STRATEGIES  # Lazy: configs import this module early.
  if name not in STRATEGIES:
    raise ValueError(f"Unknown strategy '{name}'; known: {sorted(STRATEGIES)}")
  params = list(inspect.signature(STRATEGIES[name]).parameters.values())[1:]  # after fns
  return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY
          or p.kind == p.POSITIONAL_OR_KEYWORD}


def strategy_kw(name: str, **tuned: Any) -> dict[str, Any]:
  """The factory defaults of `name` updated with `tuned`.

  Args:
    name: a registered strategy.
    **tuned: keyword values that depart from the defaults.

  Returns:
    {keyword: value} for every keyword of the factory.

  Raises:
    ValueError: a tuned keyword the factory does not take (named, with the
      accepted ones).
  """
  kw = factory_kw(name)
  unknown = sorted(set(tuned) - set(kw))
  if unknown:
    raise ValueError(f"strategy.kw.{unknown[0]}: strategy '{name}' has no such keyword; "
                     f"it accepts {sorted(kw)}")
  return {**kw, **tuned}


def kw_config(kw: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """`kw` as a ConfigDict whose None defaults still take a command-line value.

  A plain None field has type NoneType, which config_flags cannot parse; a
  FieldReference typed `object` takes any Python literal (or None).
  """
  return ml_collections.ConfigDict(
      {k: ml_collections.FieldReference(None, field_type=object) if v is None else v
       for k, v in kw.items()})


def load_file(spec: str) -> ml_collections.ConfigDict:
  """Builds 'path/to/config.py[:ARG]' as config_flags does: get_config(ARG).

  Args:
    spec: the --config flag's value.

  Returns:
    The config returned by the file's get_config, without any overrides.
  """
  path, sep, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_al_jax_config_file", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if sep else module.get_config()


def _paths(d: Mapping, prefix: str = "") -> set[str]:
  out = set()
  for k, v in d.items():
    out.add(prefix + k)
    if isinstance(v, Mapping):
      out |= _paths(v, f"{prefix}{k}.")
  return out


def check_fields(file_config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  """Fails on an override of a field the config file does not define.

  Args:
    file_config: the config file built without overrides.
    overrides: {dotted path: value}; strategy.kw.* paths are checked later,
      against the final strategy.

  Raises:
    ValueError: naming the first unknown field.
  """
  known = _paths(file_config.to_dict())
  unknown = sorted(p for p in overrides if p not in known and not p.startswith(_KW))
  if unknown:
    raise ValueError(f"--config.{unknown[0]}: the config has no field '{unknown[0]}'")


def resolve(config: ml_collections.ConfigDict, file_config: ml_collections.ConfigDict,
            overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """The run config: `config` (file + overrides) with strategy.kw for the final strategy.

  Args:
    config: the config after the command line's overrides.
    file_config: the same config file built again without overrides.
    overrides: {dotted path: value} of the command line (config_flags).

  Returns:
    A copy of `config` whose strategy.kw lists every keyword of the final
    strategy.name.

  Raises:
    ValueError: an override of a field the file does not define (other
      than strategy.kw.*), or a strategy.kw entry the final strategy does
      not take.
  """
  check_fields(file_config, overrides)
  out = config.copy_and_resolve_references()
  name = out.strategy.name
  kw = out.strategy.kw.to_dict()
  if name != file_config.strategy.name:
    # The file's kw was written for its own strategy: keep only the command line's.
    kw = {p[len(_KW):]: v for p, v in overrides.items() if p.startswith(_KW)}
  accepted = factory_kw(name)
  unknown = sorted(set(kw) - set(accepted))
  if unknown:
    raise ValueError(f"--config.{_KW}{unknown[0]}: the config has no field "
                     f"'{_KW}{unknown[0]}'; strategy '{name}' accepts {sorted(accepted)}")
  with out.unlocked():
    out.strategy.kw = strategy_kw(name, **kw)
  return out
