"""The `al-jax` console command (installed by `pip install .`).

  al-jax run --config configs/default.py --workdir /tmp/al   # = python -m al_jax.main
  al-jax report /tmp/runs/* --out /tmp/report                # = python -m al_jax.report

Each subcommand takes exactly the flags of its module.
"""

import os
import sys

from absl import app

USAGE = """usage: al-jax COMMAND [FLAGS]

commands:
  run      run one active-learning experiment (= python -m al_jax.main)
  report   compare finished runs: AUBC table, CSV, learning curves (= python -m al_jax.report)

`al-jax COMMAND --help` lists the command's flags."""


def _help(module, flag_names: str) -> None:
  """`--help` prints the __main__ module's docstring: show the command's."""
  main_module = sys.modules.get("__main__")
  if main_module is not None:
    main_module.__doc__ = (f"{module.__doc__}\nFlags: {flag_names} "
                           "(--helpfull lists every flag).")


def _run(args: list[str]) -> None:
  from al_jax import main as run_main  # Defines the --config / --workdir flags.
  _help(run_main, "--config, --workdir, --config.FIELD=VALUE")
  # main.py's own parser turns a bad --config.X override into one error line.
  app.run(run_main.main, argv=args,
          flags_parser=getattr(run_main, "_parse_flags", app.parse_flags_with_usage))


def _report(args: list[str]) -> None:
  from al_jax import report
  report.define_flags()
  _help(report, "--out")
  app.run(report.main, argv=args)


COMMANDS = {"run": _run, "report": _report}


def main(argv: list[str] | None = None) -> None:
  """Entry point: dispatches `al-jax COMMAND ...` to the command's module.

  Args:
    argv: the arguments after the program name (default: sys.argv[1:]).
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(USAGE)
    sys.exit(0 if argv else 2)
  if argv[0] not in COMMANDS:
    sys.exit(f"error: unknown command '{argv[0]}'; known: {sorted(COMMANDS)}\n\n{USAGE}")
  # Configs import their neighbours (`from configs.default import ...`): make
  # the current folder importable, as `python -m al_jax.main` does.
  if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  COMMANDS[argv[0]]([f"al-jax {argv[0]}", *argv[1:]])


if __name__ == "__main__":
  main()
