"""The ``computegrid`` command line: one console script, one module per sub-command.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning the exit code. Bad input is
reported as one line on stderr with exit code 2 (``UsageError``), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from computegrid.cli.errors import UsageError

# Sub-command modules, imported lazily so `computegrid explain` never loads kopf.
COMMANDS: tuple[str, ...] = ("explain", "crds", "bench", "testbed", "sim", "run", "demo")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is imported
    (``computegrid run`` must not pay for scipy, which the simulator's module loads)."""
    parser = argparse.ArgumentParser(
        prog="computegrid",
        description="Green, latency-aware scheduling across Kubernetes clusters of compute hubs.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    named = [first] if first in COMMANDS else []
    for name in named or COMMANDS:
        try:
            module = importlib.import_module(f"computegrid.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"computegrid.cli.{name}":
                raise
            continue  # a sub-command not built yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(given)
    args = parser.parse_args(given)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"computegrid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
