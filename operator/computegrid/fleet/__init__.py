"""Connections to member clusters: clients, probes, snapshots and health.

Public surface: ``Fleet`` (the registry the handlers hold), ``MemberClient`` (the protocol a
test can swap in), ``KubeMemberClient``/``HubSecrets`` (the real clients), and the pure
``build_snapshot``/``ready_status``/``failed_status`` builders.
"""

from computegrid.fleet.client import (
    DEFAULT_TIMEOUT,
    Body,
    HubSecrets,
    KubeMemberClient,
    MemberClient,
)
from computegrid.fleet.registry import Fleet, MemberState, ProbeResult, transient
from computegrid.fleet.snapshot import build_snapshot, pod_requests, power_mix, totals
from computegrid.fleet.status import (
    condition,
    failed_status,
    find_condition,
    merge_conditions,
    now_rfc3339,
    parse_rfc3339,
    ready_status,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Body",
    "Fleet",
    "HubSecrets",
    "KubeMemberClient",
    "MemberClient",
    "MemberState",
    "ProbeResult",
    "build_snapshot",
    "condition",
    "failed_status",
    "find_condition",
    "merge_conditions",
    "now_rfc3339",
    "parse_rfc3339",
    "pod_requests",
    "power_mix",
    "ready_status",
    "totals",
    "transient",
]
