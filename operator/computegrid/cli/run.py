"""``computegrid run``: the operator (Kopf underneath) against a hub cluster.

Options travel to the handlers module through ``COMPUTEGRID_*`` environment variables (see
``computegrid.handlers.options``), set here before that module is imported.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from computegrid.cli.errors import UsageError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run the operator: probes, placement, dispatch, metrics"
    )
    parser.add_argument("--hub-kubeconfig", help="kubeconfig of the hub (default: in-cluster)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", action="store_true", help="watch all (the default)")
    parser.add_argument("--peering", default="", help="Kopf peering name for HA (default: none)")
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    parser.add_argument("--metrics-port", type=int, default=8080, help="/metrics port (0: off)")
    parser.add_argument("--liveness-port", type=int, default=0, help="/healthz port (0: off)")
    parser.add_argument("--probe-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--failure-threshold", type=int, default=3, help="failed probes before NotReady"
    )
    parser.add_argument(
        "--grace-period",
        type=float,
        default=300.0,
        help="seconds a member may be unreachable before its jobs move (a job's "
        "spec.failover.gracePeriodSeconds wins; default 300)",
    )
    parser.add_argument(
        "--finished-job-ttl",
        type=float,
        default=3600.0,
        help="ttlSecondsAfterFinished set on a member Job once its result is on the hub",
    )
    parser.add_argument(
        "--delete-timeout", type=float, default=60.0, help="give up on a lost member after"
    )
    parser.add_argument("--hub-name", default="hub", help="label value of origin-cluster")
    parser.add_argument(
        "--tenant-namespace-template",
        default="{hub}-{namespace}",
        help="the member namespace this hub owns for a hub namespace; fields {hub} and "
        "{namespace} (default {hub}-{namespace}; over 63 characters: cut, plus a hash)",
    )
    parser.add_argument(
        "--forecast-interval",
        type=float,
        default=300.0,
        help="seconds between refreshes of a member's power forecast (default 300)",
    )
    parser.add_argument(
        "--max-replans",
        type=int,
        default=3,
        help="times a Deferred job may be re-planned on a new forecast before its start",
    )
    parser.add_argument(
        "--joint-replan-interval",
        type=float,
        default=3600.0,
        help="seconds between joint re-plans of all Deferred jobs, on the turn of each "
        "interval (default 3600: hourly); 0: never, each keeps the plan it got alone",
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="seconds added to the wall clock when planning in time (windows, forecasts, "
        "planned starts); for tests and demos only, 0 in production",
    )
    parser.add_argument(
        "--log-format", choices=["plain", "json"], default="plain", help="json: structured logs"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_replans < 0:
        raise UsageError("--max-replans must be 0 or more")
    if args.joint_replan_interval < 0:
        raise UsageError("--joint-replan-interval must be 0 (never) or more")
    names = (
        "probe_interval",
        "grace_period",
        "finished_job_ttl",
        "delete_timeout",
    )
    for name in (*names, "forecast_interval"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be above zero")
    if args.hub_kubeconfig and not os.path.exists(args.hub_kubeconfig):
        raise UsageError(f"--hub-kubeconfig {args.hub_kubeconfig}: no such file")
    from computegrid.dispatch.spec import tenant_namespace

    try:  # a template that cannot give a namespace name fails now, not at the first job
        tenant_namespace("default", args.hub_name, args.tenant_namespace_template)
    except ValueError as exc:
        raise UsageError(f"--tenant-namespace-template: {exc}") from None
    from computegrid.handlers.options import OperatorOptions

    options = OperatorOptions(
        hub_kubeconfig=os.path.abspath(args.hub_kubeconfig) if args.hub_kubeconfig else "",
        namespaces=",".join(args.namespace),
        peering=args.peering,
        priority=args.priority,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        probe_interval=args.probe_interval,
        failure_threshold=args.failure_threshold,
        grace_period=args.grace_period,
        finished_job_ttl=args.finished_job_ttl,
        delete_timeout=args.delete_timeout,
        hub_name=args.hub_name,
        tenant_namespace_template=args.tenant_namespace_template,
        forecast_interval=args.forecast_interval,
        max_replans=args.max_replans,
        joint_replan_interval=args.joint_replan_interval,
        clock_offset=args.clock_offset,
    )
    os.environ.update(options.to_env())
    if options.hub_kubeconfig:
        os.environ["KUBECONFIG"] = options.hub_kubeconfig  # what Kopf's kubeconfig login reads
    from computegrid.handlers import operator

    operator.run_operator(options, verbose=args.verbose, json_logs=args.log_format == "json")
    return 0
