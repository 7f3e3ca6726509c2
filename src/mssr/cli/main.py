"""`mssr` entry point. Each sub-command lives in its own module under :mod:`mssr.cli`.

A sub-command module defines ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported lazily so that ``mssr --help`` stays fast and a broken optional
dependency of one command does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module path; order is the order shown in --help
COMMANDS: dict[str, str] = {
    "train": "mssr.cli.train",
    "sft": "mssr.cli.sft",
    "data": "mssr.cli.data",
    "eval": "mssr.cli.eval",
    "grade": "mssr.cli.grade",
    "compare": "mssr.cli.compare",
    "plan": "mssr.cli.plan",
}


def _available() -> dict[str, object]:
    mods = {}
    for name, path in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(path)
        except ModuleNotFoundError as exc:  # command not built yet, or its module is missing
            if exc.name != path:
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    from mssr.cli.args import OneLineParser

    parser = OneLineParser(prog="mssr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a refused argument (2, one line already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SystemExit as exc:  # a sub-command's own parser refused an argument (one line already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
