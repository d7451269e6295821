"""The ``computegrid`` command line: one console script, one sub-command per verb."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("computegrid: not yet wired", file=sys.stderr)
    return 2
