"""Connections to member clusters and the hub: clients, probes, watches, capacity, writes.

Public surface: ``Fleet`` (members, their health and Job copies), ``probe``, ``JobWatch``
and ``ComputeJobWatch`` (a member's Jobs, the hub's ComputeJobs), ``Capacity`` (the compiled
fleet state and reservations), ``HubClient``/``HubWriter`` (every hub call, bounded),
``MemberClient`` (the protocol a test can swap in) and the pure
``build_snapshot``/``ready_status``/``failed_status`` builders.
"""

from computegrid.api.conditions import (
    condition,
    find_condition,
    merge_conditions,
    now_rfc3339,
    parse_rfc3339,
)
from computegrid.fleet.capacity import Capacity
from computegrid.fleet.client import Body, HubClient, KubeMemberClient, MemberClient
from computegrid.fleet.hubwatch import ComputeJobWatch
from computegrid.fleet.hubwrites import Conflict, HubWriter, JobRef
from computegrid.fleet.probes import ProbeResult, probe, transient
from computegrid.fleet.registry import Fleet, MemberState
from computegrid.fleet.rest import DEFAULT_TIMEOUT, Rest, http_status, status_message
from computegrid.fleet.snapshot import build_snapshot, pod_essence, pod_requests, power_mix, totals
from computegrid.fleet.status import failed_status, ready_status
from computegrid.fleet.watch import JobWatch

__all__ = [
    "DEFAULT_TIMEOUT",
    "Body",
    "Capacity",
    "ComputeJobWatch",
    "Conflict",
    "Fleet",
    "HubClient",
    "HubWriter",
    "JobRef",
    "JobWatch",
    "KubeMemberClient",
    "MemberClient",
    "MemberState",
    "ProbeResult",
    "Rest",
    "build_snapshot",
    "condition",
    "failed_status",
    "find_condition",
    "http_status",
    "merge_conditions",
    "now_rfc3339",
    "parse_rfc3339",
    "pod_essence",
    "pod_requests",
    "power_mix",
    "probe",
    "ready_status",
    "status_message",
    "totals",
    "transient",
]
