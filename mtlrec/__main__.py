"""Command line: ``python -m mtlrec <command> ...``.

Each command lives in its own module under ``mtlrec.cli`` and is imported only when
used, so ``python -m mtlrec --help`` stays fast. A command module exposes
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module under mtlrec.cli, one-line help)
COMMANDS = {
    "data": ("data", "inspect and check interaction data (data check PATH ...)"),
    "prepare": ("prepare", "clean, encode and split data into a prepared dataset folder"),
    "train": ("train", "train a multi-task model from a JSON config"),
    "recommend": ("recommend", "top-K recommendations for one user (or a file of users: --users) from a run folder"),
    "score": ("score", "score a CSV of (user, item) pairs with every task and the fused score"),
    "explain": ("explain", "SHAP explanation of one (user, item) recommendation (--lime: LIME beside it)"),
    "explain-global": ("explain_global", "what a run's model relies on overall (global SHAP summary)"),
    "explain-dependence": ("explain_dependence", "SHAP dependence plot of one feature group"),
    "sample": ("sample", "generate the shipped sample data or synthetic data"),
    "runs": ("runs", "list, compare, rename, tag, delete, export and import run folders; export them to MLflow or TensorBoard"),
    "export": ("export_model", "write a run's model as TorchScript or ONNX with a JSON sidecar of its inputs"),
    "report": ("report", "write a self-contained HTML report of a run (opens offline)"),
    "workspaces": ("workspaces", "remove the app's workspaces idle past their time to live or beyond the disk cap"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtlrec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (mod, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if name == wanted:  # import only the command that runs
            try:
                modules[name] = importlib.import_module(f"mtlrec.cli.{mod}")
            except ModuleNotFoundError as e:
                if e.name == f"mtlrec.cli.{mod}":
                    print(f"mtlrec: the '{name}' command is not available in this version", file=sys.stderr)
                    return 2
                raise
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
