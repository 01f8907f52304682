"""The ``storeloop`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function, so that
adding a command never means editing another group's code. Heavy imports happen inside the
command functions, which keeps ``storeloop --help`` fast.

Commands of other packages of the distribution register through the ``storeloop.commands``
entry point group (pyproject.toml): ``storeloop simulate`` lives in ``simulation.cli``, which may
not import serving, and serving does not import it either (the lookup is by name, at run time).
Such a command's ``register(subparsers, local_shop=...)`` receives a factory of
``serving.inprocess.LocalShop``: the one thing of the shop it may drive in-process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

#: Modules under ``serving.cli`` that contribute commands, in help order.
COMMAND_MODULES = ("database", "server", "recs", "search")
#: Entry point group of commands that other packages register (``simulate``).
PLUGIN_GROUP = "storeloop.commands"


def _local_shop() -> Any:
    """The in-process shop the environment describes (imported only when a command runs)."""
    from serving.inprocess import LocalShop

    return LocalShop.from_environment()


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser from every command module."""
    parser = argparse.ArgumentParser(
        prog="storeloop", description="storeloop: a shop that learns from itself."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        plugin.load()(subparsers, local_shop=_local_shop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
