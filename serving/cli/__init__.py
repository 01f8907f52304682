"""The ``storeloop`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function, so that
adding a command never means editing another group's code. Heavy imports happen inside the
command functions, which keeps ``storeloop --help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules under ``serving.cli`` that contribute commands, in help order.
COMMAND_MODULES = ("database", "server", "simulate", "recs", "search")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser from every command module."""
    parser = argparse.ArgumentParser(
        prog="storeloop", description="storeloop: a shop that learns from itself."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command group not written yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
