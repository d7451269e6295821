"""``computegrid testbed``: start, inspect and stop the local fleet of kwok clusters.

Why a CLI on top of ``computegrid.testbed``: a newcomer should get a hub and members with one
command and be told the exact ``kubectl`` lines to type next, with the fleet's real paths.
"""

from __future__ import annotations

import argparse
import json
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

    up = sub.add_parser(
        "up", help="start a hub and member clusters (repairs a running same-shape one)"
    )
    common(up)
    size = up.add_mutually_exclusive_group()
    size.add_argument("--members", type=int, help="the first N national clusters (default 3)")
    size.add_argument("--fleet", choices=["national"], help="all 10 national clusters")
    size.add_argument(
        "--topology",
        type=Path,
        help="a three-level federation from a topology file (deploy/testbed/federation.yaml)",
    )
    up.add_argument("--nodes-per-member", type=int, default=3, help="fake nodes per member")
    up.add_argument("--fresh", action="store_true", help="replace a running fleet of the same name")
    up.set_defaults(func=run_up)

    down = sub.add_parser("down", help="stop and delete the fleet")
    common(down)
    down.set_defaults(func=run_down)

    status = sub.add_parser(
        "status", help="every component of every cluster: process and health (exit 1 if not)"
    )
    common(status)
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    status.set_defaults(func=run_status)

    repair = sub.add_parser(
        "repair", help="restart components that exited or hang (etcd data kept)"
    )
    common(repair)
    repair.set_defaults(func=run_repair)


def _testbed() -> Any:
    # Imported here so that `computegrid --help` does not load the Kubernetes client.
    import computegrid.testbed as testbed

    return testbed


def run_up(args: argparse.Namespace) -> int:
    testbed = _testbed()
    if args.topology is not None:
        return _federation_up(args)
    if args.members is not None and args.members < 1:
        raise UsageError(f"--members must be at least 1, got {args.members}")
    start = testbed.up if args.fresh else testbed.up_or_repair
    try:
        result = start(
            args.name,
            args.members,
            fleet=args.fleet,
            nodes_per_member=args.nodes_per_member,
            workdir=args.workdir,
            log=print,
        )
    except (testbed.BinariesMissingError, testbed.FleetBusyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    except (testbed.ComponentsUnhealthyError, testbed.KwokctlError, testbed.NotReadyError) as exc:
        # What failed and the end of its log; the started clusters were removed, logs kept.
        print(f"fleet {args.name}: start failed:\n{exc}", file=sys.stderr)
        return 1
    info, restarts = (result, None) if args.fresh else result
    rows = testbed.status(info.name, info.workdir)
    _print_status(rows)
    if restarts is None:
        print(f"\nstarted in {info.startup_seconds:.1f}s; manifest: {info.manifest_path}")
    else:
        print(
            f"\nkept the running fleet and its data ({len(restarts)} component(s) restarted; "
            f"--fresh replaces it); manifest: {info.manifest_path}"
        )
    print("next, try:")
    for line in testbed.kubectl_hints(info):
        print(f"  {line}")
    print(f"  computegrid testbed status{_where(info)}")
    print(f"  computegrid testbed down{_where(info)}")
    return 0 if all(row.healthy for row in rows) else 1


def _federation_up(args: argparse.Namespace) -> int:
    from computegrid.testbed import federation

    testbed = _testbed()
    try:
        topology = federation.read_topology(args.topology)
        info = federation.up_federation(args.name, topology, workdir=args.workdir, log=print)
    except (testbed.BinariesMissingError, testbed.FleetBusyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    kubectl = str(Path(info.national.bin_dir) / "kubectl")
    print(f"\nfederation {info.name} started in {info.startup_seconds:.1f}s")
    print(f"  national hub {info.national_name}: {info.national.hub.kubeconfig}")
    for region in info.regions:
        members = ", ".join(m.name for m in region.fleet.members)
        print(f"  regional hub {region.name} ({region.delegation}): {members}")
        print(f"    {region.fleet.hub.kubeconfig}")
    print("next: start one operator per hub (computegrid run --hub-kubeconfig K --hub-name N),")
    print("register the members (docs/operator.md, Federation; `make demo-federated` does all")
    print("of it on a federation of its own), then:")
    print(f"  {kubectl} --kubeconfig {info.national.hub.kubeconfig} get cgj -A")
    print(f"  computegrid testbed down{_where(info.national)}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    testbed = _testbed()
    from computegrid.testbed import federation

    work = testbed.workdir_for(args.name, args.workdir)
    if (work / federation.MANIFEST).exists():
        federation.down_federation(args.name, args.workdir)
        print(f"federation {args.name}: removed")
        return 0
    try:
        removed = testbed.down(args.name, args.workdir)
    except (testbed.BinariesMissingError, testbed.FleetBusyError) as exc:
        raise UsageError(str(exc)) from exc
    if removed:
        print(f"fleet {args.name}: removed {', '.join(removed)}")
    else:
        print(f"fleet {args.name}: nothing to remove")
    return 0


def _where(info: Any) -> str:
    """``--name N`` plus ``--workdir W`` when the fleet is not in its default folder."""
    default = _testbed().workdir_for(info.name).resolve()
    folder = "" if Path(info.workdir) == default else f" --workdir {info.workdir}"
    return f" --name {info.name}{folder}"


def _no_fleet(args: argparse.Namespace, exc: FileNotFoundError) -> UsageError:
    return UsageError(f"no fleet {args.name!r} ({exc.filename}); start one: computegrid testbed up")


def run_status(args: argparse.Namespace) -> int:
    testbed = _testbed()
    try:
        rows = testbed.status(args.name, args.workdir)
    except FileNotFoundError as exc:
        raise _no_fleet(args, exc) from exc
    healthy = all(row.healthy for row in rows)
    info = testbed.load(args.name, args.workdir)
    if args.json:
        doc = {
            "fleet": info.name,
            "workdir": info.workdir,
            "healthy": healthy,
            "clusters": [row.to_dict() for row in rows],
        }
        print(json.dumps(doc, indent=2))
        return 0 if healthy else 1
    _print_status(rows)
    print(f"\nmanifest: {info.manifest_path}")
    if healthy:
        for line in testbed.kubectl_hints(info):
            print(f"  {line}")
    else:
        print(f"bring it back: computegrid testbed repair{_where(info)}")
    return 0 if healthy else 1


def run_repair(args: argparse.Namespace) -> int:
    testbed = _testbed()
    try:
        restarts = testbed.repair(args.name, args.workdir, log=print)
    except FileNotFoundError as exc:
        raise _no_fleet(args, exc) from exc
    except (testbed.BinariesMissingError, testbed.FleetBusyError) as exc:
        raise UsageError(str(exc)) from exc
    except testbed.RepairError as exc:
        print(exc, file=sys.stderr)
        _print_status(testbed.status(args.name, args.workdir))
        return 1
    if restarts:
        print(f"fleet {args.name}: restarted {len(restarts)} component(s)")
    else:
        print(f"fleet {args.name}: every component was healthy; nothing to do")
    rows = testbed.status(args.name, args.workdir)
    _print_status(rows)
    return 0 if all(row.healthy for row in rows) else 1


def _print_status(rows: list[Any]) -> None:
    """One line per cluster, then every failing component with the end of its log."""
    width = max(len(row.cluster.name) for row in rows)
    print(
        f"{'CLUSTER':<{width}}  {'ROLE':<6}  {'SERVER':<24}  {'READY':<5}  {'VERSION':<7}  "
        "COMPONENTS"
    )
    for row in rows:
        c = row.cluster
        ready = "yes" if row.ready else "NO"
        failing = row.failing
        if not row.components:
            parts = "NONE FOUND (cluster files missing?)"
        elif failing:
            parts = "DOWN: " + ", ".join(f.name for f in failing)
        else:
            parts = f"all {len(row.components)} ok"
        print(
            f"{c.name:<{width}}  {c.role:<6}  {c.server:<24}  {ready:<5}  "
            f"{row.version or '-':<7}  {parts}"
        )
    for row in rows:
        for item in row.failing:
            state = "running" if item.running else "NOT RUNNING"
            print(f"\n{row.cluster.name} / {item.name}: pid {item.pid} {state}; {item.detail}")
            print(f"  log {item.log}, last lines:")
            for line in _testbed().log_tail(Path(item.log), 8).splitlines():
                print(f"    | {line}")
    sys.stdout.flush()
