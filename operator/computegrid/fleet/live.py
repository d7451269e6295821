"""The live fleet as the hub records it: MemberCluster statuses to ``ClusterSnapshot``s (pure).

For readers that see only the hub (``kubectl computegrid``): no member kubeconfig, no node
lists, just what the operator's probes last wrote. Two consequences, stated so nobody reads
more into a live ``explain`` than it holds:

* capacity is per compute type (``status.byComputeType``), one pseudo-node per type, so the
  per-node fit check sees a type's total free room, not the largest node's; the operator's own
  decision checks node by node;
* a status written by an operator older than ``byComputeType`` has only cluster totals: they
  go to the first type listed, the other types get nodes with no room.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from computegrid.api import ComputeType, MemberClusterSpec, Phase
from computegrid.api.conditions import find_condition
from computegrid.api.validation import first_error
from computegrid.fleet.snapshot import UNKNOWN_POWER, quantities
from computegrid.scheduling import ClusterSnapshot, ClusterTaint, NodeCapacity, PowerMix

Body = Mapping[str, Any]
#: ComputeJob phases that still hold capacity on their member.
ACTIVE_PHASES = frozenset({Phase.SCHEDULED.value, Phase.RUNNING.value})


class StatusError(ValueError):
    """A MemberCluster the hub holds that cannot be read; the message names it and the field."""


def _node(kind: ComputeType, count: int, raw: Body) -> NodeCapacity:
    allocatable = quantities(raw.get("allocatable"))
    available = quantities(raw.get("available"))
    requested = {r: max(a - available.get(r, 0.0), 0.0) for r, a in allocatable.items()}
    return NodeCapacity(f"{kind.value} ×{count}", allocatable, requested, kind)


def _nodes(status: Body) -> tuple[NodeCapacity, ...]:
    per_type: Mapping[str, Body] = status.get("byComputeType") or {}
    nodes = []
    for kind in ComputeType:
        if kind.value in per_type:
            raw = per_type[kind.value]
            nodes.append(_node(kind, int(raw.get("nodeCount") or 0), raw))
    if nodes:
        return tuple(nodes)
    listed = [ComputeType(t) for t in status.get("computeTypes") or [] if t in set(ComputeType)]
    if not listed:
        return ()
    count = int(status.get("nodeCount") or 0)
    first = _node(listed[0], count, status)
    return (first, *(NodeCapacity(f"{k.value} ×?", {}, {}, k) for k in listed[1:]))


def ready_reason(status: Body) -> tuple[bool, str]:
    """(Ready, why not) from the Ready condition; no condition yet is not ready."""
    ready = find_condition(status.get("conditions"), "Ready")
    if ready is None:
        return False, "not probed yet (no Ready condition)"
    if ready.get("status") == "True":
        return True, ""
    return False, str(ready.get("message") or ready.get("reason") or "Ready is not True")


def _power(status: Body) -> PowerMix:
    power = status.get("power") or {}
    try:
        return PowerMix(
            float(power["renewableShare"]),
            float(power["carbonIntensity"]),
            float(power["pricePerKWh"]),
        )
    except (KeyError, TypeError, ValueError):
        return UNKNOWN_POWER


def snapshot_from_status(member: Body) -> ClusterSnapshot:
    """The member as the core would see it from its hub record alone."""
    meta = member.get("metadata") or {}
    name = str(meta.get("name") or "")
    try:
        spec = MemberClusterSpec.model_validate(member.get("spec") or {})
    except ValidationError as exc:
        where, message = first_error(exc)
        raise StatusError(f"MemberCluster {name}: spec.{where}: {message}") from None
    status: Body = member.get("status") or {}
    ready, why = ready_reason(status)
    return ClusterSnapshot(
        name=name,
        hub=spec.hub,
        region=spec.region,
        location=spec.location,
        power=_power(status),
        nodes=_nodes(status),
        ready=ready,
        not_ready_reason=why,
        taints=tuple(ClusterTaint(t.key, t.value, t.effect) for t in spec.taints),
        labels=dict(meta.get("labels") or {}),
        paired_with=frozenset(spec.paired_with),
    )


@dataclass(frozen=True)
class JobCounts:
    """ComputeJobs per member (status.remote.cluster): all, and those still holding room."""

    total: Counter[str]
    active: Counter[str]


def count_jobs(jobs: Iterable[Body]) -> JobCounts:
    total: Counter[str] = Counter()
    active: Counter[str] = Counter()
    for job in jobs:
        status = job.get("status") or {}
        cluster = (status.get("remote") or {}).get("cluster")
        if not cluster:
            continue
        total[cluster] += 1
        if status.get("phase") in ACTIVE_PHASES:
            active[cluster] += 1
    return JobCounts(total, active)
