"""``computegrid testbed``: start, inspect and stop the local fleet of kwok clusters.

Why a CLI on top of ``computegrid.testbed``: a newcomer should get a hub and members with one
command and be told the exact ``kubectl`` lines to type next, with the fleet's real paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from computegrid.cli.errors import UsageError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "testbed", help="a local fleet: hub + member Kubernetes control planes (kwok)"
    )
    sub = parser.add_subparsers(dest="testbed_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default="computegrid", help="fleet name (default computegrid)")
        p.add_argument("--workdir", type=Path, help="fleet folder (default <cache>/fleets/NAME)")

    up = sub.add_parser("up", help="start a hub and member clusters (replaces a same-name one)")
    common(up)
    size = up.add_mutually_exclusive_group()
    size.add_argument("--members", type=int, help="the first N national clusters (default 3)")
    size.add_argument("--fleet", choices=["national"], help="all 10 national clusters")
    up.add_argument("--nodes-per-member", type=int, default=3, help="fake nodes per member")
    up.set_defaults(func=run_up)

    down = sub.add_parser("down", help="stop and delete the fleet")
    common(down)
    down.set_defaults(func=run_down)

    status = sub.add_parser("status", help="each cluster, its API server URL, ready or not")
    common(status)
    status.set_defaults(func=run_status)


def _testbed() -> Any:
    # Imported here so that `computegrid --help` does not load the Kubernetes client.
    import computegrid.testbed as testbed

    return testbed


def run_up(args: argparse.Namespace) -> int:
    testbed = _testbed()
    if args.members is not None and args.members < 1:
        raise UsageError(f"--members must be at least 1, got {args.members}")
    try:
        info = testbed.up(
            args.name,
            args.members,
            fleet=args.fleet,
            nodes_per_member=args.nodes_per_member,
            workdir=args.workdir,
            log=print,
        )
    except testbed.BinariesMissingError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _print_status(testbed.status(info.name, info.workdir))
    print(f"\nstarted in {info.startup_seconds:.1f}s; manifest: {info.manifest_path}")
    print("next, try:")
    for line in testbed.kubectl_hints(info):
        print(f"  {line}")
    print(f"  computegrid testbed down --name {info.name}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    testbed = _testbed()
    try:
        removed = testbed.down(args.name, args.workdir)
    except testbed.BinariesMissingError as exc:
        raise UsageError(str(exc)) from exc
    if removed:
        print(f"fleet {args.name}: removed {', '.join(removed)}")
    else:
        print(f"fleet {args.name}: nothing to remove")
    return 0


def run_status(args: argparse.Namespace) -> int:
    testbed = _testbed()
    try:
        rows = testbed.status(args.name, args.workdir)
    except FileNotFoundError as exc:
        raise UsageError(
            f"no fleet {args.name!r} ({exc.filename}); start one: computegrid testbed up"
        ) from exc
    _print_status(rows)
    info = testbed.load(args.name, args.workdir)
    print(f"\nmanifest: {info.manifest_path}")
    for line in testbed.kubectl_hints(info):
        print(f"  {line}")
    return 0 if all(row.ready for row in rows) else 1


def _print_status(rows: list[Any]) -> None:
    width = max(len(row.cluster.name) for row in rows)
    print(f"{'CLUSTER':<{width}}  {'ROLE':<6}  {'SERVER':<24}  {'READY':<5}  VERSION  KUBECONFIG")
    for row in rows:
        c = row.cluster
        ready = "yes" if row.ready else "NO"
        print(
            f"{c.name:<{width}}  {c.role:<6}  {c.server:<24}  {ready:<5}  "
            f"{row.version or '-':<7}  {c.kubeconfig}"
        )
    sys.stdout.flush()
