"""Dumps every config of a checkout to one JSON file (for before/after checks).

  .venv/bin/python tools/dump_configs.py --out /tmp/configs_after.json
  .venv/bin/python tools/dump_configs.py --root ../other_checkout --out /tmp/configs_before.json

Each configs/*.py is built with no argument and with `smoke`. A protocol
file (one that takes the strategy as its argument) is also built with every
registered strategy name it accepts, with and without `,smoke`, and with
each of its variant flags (`VARIANTS` in the file). Keys of the output are
`file.py:ARG` ("file.py:" for no argument); values are the configs as
plain JSON, or {"error": message} where building fails.
"""

import argparse
import glob
import importlib
import json
import os
import sys


def _build(module, arg):
  try:
    c = module.get_config(arg) if arg is not None else module.get_config()
    return json.loads(c.to_json_best_effort(sort_keys=True))
  except Exception as e:  # A dump records failures instead of stopping.
    return {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _args(module, strategy_names):
  """The arguments to build `module` with: none, smoke, and the strategies it takes."""
  own = _build(module, None).get("strategy", {}).get("name")
  taken = [n for n in strategy_names
           if _build(module, n).get("strategy", {}).get("name") == n]
  is_protocol = len(taken) > 1 or (taken and taken != [own])
  out = [None, "smoke"]
  if not is_protocol:
    return out
  for variant in [""] + [f",{v}" for v in getattr(module, "VARIANTS", ())]:
    for n in taken:
      out += [n + variant, n + variant + ",smoke"]
  return out


def dump(root: str) -> dict:
  """{file:arg -> config dict} for every config under root/configs."""
  sys.path.insert(0, os.path.abspath(root))
  from al_jax.strategies import STRATEGIES  # From root: imported after the path is set.
  names = sorted(STRATEGIES)
  result = {}
  for path in sorted(glob.glob(os.path.join(root, "configs", "*.py"))):
    stem = os.path.basename(path)[:-3]
    module = importlib.import_module(f"configs.{stem}")
    if not hasattr(module, "get_config"):
      continue  # a helper module (configs/common.py)
    for arg in _args(module, names):
      result[f"{stem}.py:{arg or ''}"] = _build(module, arg)
  return result


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--root", default=".", help="checkout holding configs/ and al_jax/")
  p.add_argument("--out", required=True, help="JSON file to write")
  a = p.parse_args()
  configs = dump(a.root)
  with open(a.out, "w") as f:
    json.dump(configs, f, indent=1, sort_keys=True)
  print(f"{len(configs)} configs -> {a.out}")


if __name__ == "__main__":
  main()
