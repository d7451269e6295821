"""``kubectl computegrid``: the live fleet, a dry run against it, and why a job went where.

Installed as the ``kubectl-computegrid`` console script, which kubectl runs for ``kubectl
computegrid ...`` when it is on PATH. It reads the hub the current kubeconfig context points
at (kubectl passes plugins no flags: ``KUBECONFIG`` or ``~/.kube/config``; ``--kubeconfig``
and ``--context`` as kubectl's own), and never writes.

    kubectl computegrid fleet                 each member: ready, free room per type, power, jobs
    kubectl computegrid explain -f job.yaml   where it would go on the live fleet, and why
    kubectl computegrid why NAME [-n NS]      the decision recorded in a ComputeJob's status
                                              (Pending: and its spec judged on the live fleet)

``explain`` and a Pending job's ``why`` judge as the operator does: pods against single nodes'
room, less the room it holds for jobs in flight; what the hub's record cannot tell is in
``fleet.live``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from computegrid.api import ComputeJob, ComputeType, LatencySensitivity, Phase, format_quantity
from computegrid.cli import explain
from computegrid.cli.errors import UsageError
from computegrid.fleet.hub_reader import HubError, HubReader, context_namespace
from computegrid.fleet.live import (
    StatusError,
    count_jobs,
    in_flight,
    live_state,
    snapshot_from_status,
)
from computegrid.fleet.snapshot import by_type
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import LATENCY_BUDGET_MS, ClusterSnapshot, Scheduler

PROG = "kubectl computegrid"
# Resources shown per compute type in `fleet`: what a job of that type mostly asks for.
SHOWN = ("cpu", "memory", "nvidia.com/gpu")
NOTE = (
    "(live fleet from the MemberCluster statuses: each pod is checked against the room of the "
    "few nodes with most free and equal shares of the rest; room held for jobs placed since "
    "a member's last probe is taken off; see docs/operator.md, kubectl computegrid)"
)


# What of a stored ComputeJob's metadata its spec is judged with (the server's fields are not).
SPEC_META = ("name", "namespace", "labels", "annotations")


def _hub_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=default,
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
    )
    parser.add_argument("--context", default=default, help="kubeconfig context (default: current)")
    parser.add_argument(
        "-l", "--selector", default=default, help="only MemberClusters with these labels"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="The live computegrid fleet, dry runs against it, and decisions."
    )
    _hub_options(parser, None)
    # The same options after the command too (``kubectl computegrid fleet --context x``);
    # suppressed defaults so they do not overwrite ones given before it.
    common = argparse.ArgumentParser(add_help=False)
    _hub_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fleet = sub.add_parser(
        "fleet", parents=[common], help="each member: readiness, free capacity, power, jobs"
    )
    fleet.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    fleet.set_defaults(func=run_fleet)

    dry = sub.add_parser(
        "explain", parents=[common], help="dry run of job manifests against the live fleet"
    )
    dry.add_argument("-f", "--filename", required=True, type=Path, help="job YAML or a folder")
    dry.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    dry.set_defaults(func=run_explain)

    why = sub.add_parser(
        "why", parents=[common], help="the recorded decision of an existing ComputeJob"
    )
    why.add_argument("name", help="ComputeJob name")
    why.add_argument("-n", "--namespace", help="its namespace (default: the context's)")
    why.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    why.set_defaults(func=run_why)
    return parser


def emit(data: Any, output: str, table: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        print(table)


def live_snapshots(members: list[dict[str, Any]]) -> list[ClusterSnapshot]:
    try:
        return sorted((snapshot_from_status(m) for m in members), key=lambda s: s.name)
    except StatusError as exc:
        raise UsageError(str(exc)) from None


# fleet ---------------------------------------------------------------------------------------


def fleet_rows(members: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = count_jobs(jobs)
    rows = []
    for snapshot in live_snapshots(members):
        free = {
            room.kind.value: {
                r: f"{format_quantity(room.available[r], r)}/{format_quantity(a, r)}"
                for r in SHOWN
                if (a := room.allocatable.get(r))
            }
            for room in by_type(snapshot)
        }
        rows.append(
            {
                "cluster": snapshot.name,
                "ready": snapshot.ready,
                "notReadyReason": snapshot.not_ready_reason or None,
                "hub": snapshot.hub,
                "region": snapshot.region.value,
                "location": snapshot.location,
                "free": free,
                "renewableShare": snapshot.power.renewable_share,
                "carbonIntensity": snapshot.power.carbon_intensity,
                "pricePerKWh": snapshot.power.price_per_kwh,
                "activeJobs": counts.active[snapshot.name],
                "jobs": counts.total[snapshot.name],
            }
        )
    return rows


def render_fleet(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no MemberClusters on this hub: register one (see the chart's NOTES)"
    header = (
        f"{'CLUSTER':<28} {'READY':<5} {'HUB':<14} {'REGION':<7} {'RENEW':>5} {'gCO2':>5} "
        f"{'CNY':>5} {'JOBS':>9}  FREE/ALLOCATABLE BY COMPUTE TYPE"
    )
    lines = [header]
    for r in rows:
        free = "; ".join(
            f"{kind} " + ", ".join(f"{res} {v}" for res, v in room.items())
            for kind, room in r["free"].items()
        )
        jobs = f"{r['activeJobs']}/{r['jobs']}"
        lines.append(
            f"{r['cluster']:<28} {'True' if r['ready'] else 'False':<5} {r['hub']:<14} "
            f"{r['region']:<7} {r['renewableShare']:>5.0%} {r['carbonIntensity']:>5.0f} "
            f"{r['pricePerKWh']:>5.2f} {jobs:>9}  {free or '-'}"
        )
        if not r["ready"]:
            lines.append(f"{'':<28} not ready: {r['notReadyReason']}")
    lines.append("JOBS: active (Scheduled or Running) / all ComputeJobs placed on the member")
    return "\n".join(lines)


def run_fleet(args: argparse.Namespace, hub: HubReader) -> int:
    rows = fleet_rows(hub.member_clusters(args.selector or ""), hub.compute_jobs())
    emit(rows, args.output, render_fleet(rows))
    return 0


# explain -------------------------------------------------------------------------------------


def judge_live(
    hub: HubReader, selector: str | None, jobs: list[tuple[str, ComputeJob]]
) -> list[dict[str, Any]]:
    """``explain``'s report of each job on the live fleet as it is now: the statuses' room,
    less what the operator holds for jobs in flight (``fleet.live``)."""
    members = hub.member_clusters(selector or "")
    snapshots = live_snapshots(members)
    if not snapshots:
        raise UsageError("no MemberClusters on this hub: nothing to place on")
    flights = in_flight(hub.compute_jobs(), members, dt.datetime.now(dt.UTC))
    latency = load_latency_model()
    scheduler = Scheduler()
    reports = []
    for source, job in jobs:
        state = live_state(snapshots, flights, latency)  # each job on the fleet as it is now
        reports.append(explain.report(source, job, explain.decide(source, job, state, scheduler)))
    return reports


def run_explain(args: argparse.Namespace, hub: HubReader) -> int:
    reports = judge_live(hub, args.selector, explain.load_jobs(args.filename))
    data: Any = reports[0] if len(reports) == 1 else reports
    emit(data, args.output, "\n\n".join(explain.render(r) for r in reports) + f"\n{NOTE}")
    return 0


# why -----------------------------------------------------------------------------------------


def why_report(job: dict[str, Any]) -> dict[str, Any]:
    """The recorded decision in ``explain.report``'s shape (runner-ups: score only)."""
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    status = job.get("status") or {}
    annotations = meta.get("annotations") or {}
    placement = status.get("placement")
    sensitivity = annotations.get("computegrid.io/latency-sensitivity", "medium")
    budget = annotations.get("computegrid.io/max-latency-ms")
    clusters: list[dict[str, Any]] = []
    blank = {"filter": None, "reason": None, "latencyMs": None, "carbonIntensity": None,
             "pricePerKWh": None, "freeCpu": None, "freeGpu": None}  # fmt: skip
    if placement:
        clusters.append(
            {
                **blank,
                "cluster": placement["cluster"],
                "verdict": "chosen",
                "score": placement.get("score"),
                "breakdown": placement.get("breakdown") or {},
                "latencyMs": placement.get("latencyMs"),
                "carbonIntensity": placement.get("carbonIntensity"),
                "pricePerKWh": placement.get("pricePerKWh"),
            }
        )
        for alt in placement.get("alternatives") or []:
            clusters.append({**blank, "cluster": alt["cluster"], "verdict": "runnerup",
                             "score": alt.get("score"), "breakdown": {}})  # fmt: skip
    return {
        "source": f"{meta.get('namespace')}/{meta.get('name')}",
        "job": meta.get("name"),
        "origin": annotations.get("computegrid.io/origin", "?"),
        "latencySensitivity": sensitivity,
        "latencyBudgetMs": float(budget) if budget else _class_budget(sensitivity),
        "computeType": spec.get("computeType", ComputeType.GENERAL.value),
        "phase": status.get("phase") or "Pending",
        "placement": placement,
        "diagnosis": None if placement else (status.get("message") or "no decision recorded yet"),
        "clusters": clusters,
        "remote": status.get("remote"),
        "reasons": (placement or {}).get("reasons") or [],
        "decidedAt": (placement or {}).get("decidedAt"),
    }


def _class_budget(sensitivity: str) -> float | None:
    try:
        return LATENCY_BUDGET_MS[LatencySensitivity(sensitivity)]
    except ValueError:
        return None


def render_why(r: dict[str, Any]) -> str:
    lines = [explain.render(r)]
    if r.get("live"):
        lines.append(f"  on the live fleet now (the table): {r['live']}\n{NOTE}")
    if r["reasons"]:
        lines.append("  why: " + "; ".join(r["reasons"]))
    remote = r.get("remote")
    if remote:
        lines.append(
            f"  phase {r['phase']}: Job {remote['namespace']}/{remote['name']} "
            f"on {remote['cluster']}"
        )
    else:
        lines.append(f"  phase {r['phase']}")
    if r["decidedAt"]:
        lines.append(f"  decided at {r['decidedAt']} (scores and power as they were then)")
    return "\n".join(lines)


def judge_pending(hub: HubReader, selector: str | None, job: dict[str, Any]) -> dict[str, Any]:
    """A Pending job's spec judged on the live fleet now (``explain``'s report), or why not."""
    meta = job.get("metadata") or {}
    source = f"{meta.get('namespace')}/{meta.get('name')}"
    doc = {
        "apiVersion": job.get("apiVersion"),
        "kind": "ComputeJob",
        "metadata": {k: meta[k] for k in SPEC_META if k in meta},
        "spec": job.get("spec") or {},
    }
    try:
        [live] = judge_live(hub, selector, [(source, explain.parse_job(doc, source))])
    except UsageError as exc:
        return {"clusters": [], "diagnosis": f"cannot judge it on the live fleet: {exc}"}
    return live


def run_why(args: argparse.Namespace, hub: HubReader) -> int:
    namespace = args.namespace or context_namespace(args.kubeconfig, args.context)
    job = hub.compute_job(namespace, args.name)
    report = why_report(job)
    if report["placement"] is None and report["phase"] == Phase.PENDING.value:
        live = judge_pending(hub, args.selector, job)
        report["clusters"] = live["clusters"]
        report["live"] = (
            f"would go to {live['placement']['cluster']}; the message above is from the "
            "operator's last try"
            if live.get("placement")
            else live["diagnosis"]
        )
    emit(report, args.output, render_why(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        hub = HubReader(args.kubeconfig, args.context)
        try:
            code: int = args.func(args, hub)
        finally:
            hub.close()
    except (UsageError, HubError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return code
