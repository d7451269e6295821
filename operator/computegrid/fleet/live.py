"""The live fleet as the hub records it: MemberCluster statuses to ``ClusterSnapshot``s (pure),
and the capacity the operator has promised but the statuses do not show yet.

For readers that see only the hub (``kubectl computegrid``, a parent hub's probe of a child
hub): no member kubeconfig, no node lists, just what the operator's probes last wrote. What
that holds, stated so nobody reads more into a live ``explain`` than it has:

* per compute type, the free room of the (at most ``LARGEST_FREE``) nodes with most free
  (``status.byComputeType[*].largestFree``) becomes one node each, exactly as probed; the
  type's other nodes become that many equal nodes sharing the rest of its free room (each
  no larger than the average of them, so no larger than the largest of them in any
  resource). A pod larger than every node of its type is refused with the operator's own
  ``ResourcesFit`` reason; a job whose pods fit the listed nodes is counted exactly; on the
  rest, pods are counted as if those nodes were equal (the operator counts them one by one,
  so there a job may fit fewer or more pods live than it does);
* a status written by an operator older than ``largestFree`` keeps the old reading: one
  pseudo-node per type holding the type's total free room, so the fit check sees the sum,
  not the largest node; older still (no ``byComputeType``): cluster totals go to the first
  type listed, the other types get nodes with no room;
* quantities are as the status renders them (memory to 4 significant digits, whole cores
  above 100), so a pod within rounding of a node's free room may be judged differently.

In-flight reservations (``in_flight``): the operator holds capacity for a job it placed
until a probe of the member counts the job's pods, the job ends, or ``RESERVATION_TTL_S``
passes (``fleet.capacity``). The hub does not record which pods a probe counted, so a job
is taken as in flight when it is Scheduled or Running on a member, was placed (or, Deferred,
started) less than the TTL ago, and after the member's last successful probe began (every
job within the TTL when the last probe failed: the room shown is older). A job placed just
before a probe that listed pods before its pods existed is taken as counted, where the
operator still holds it; ages are read on this machine's clock against the operator's.
The same ``Capacity`` code as the operator's applies them (fullest nodes first, dropped
when they no longer fit, expired at the TTL).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from computegrid.api import ComputeJob, ComputeType, MemberClusterSpec, Phase
from computegrid.api.conditions import find_condition, parse_rfc3339
from computegrid.api.member_cluster import CHILD_SEPARATOR
from computegrid.api.validation import first_error
from computegrid.fleet.capacity import RESERVATION_TTL_S, Capacity
from computegrid.fleet.snapshot import UNKNOWN_POWER, quantities
from computegrid.scheduling import (
    ClusterSnapshot,
    ClusterTaint,
    FleetState,
    JobError,
    JobRequest,
    LatencyModel,
    NodeCapacity,
    PowerMix,
    to_request,
)

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


def _share(amounts: Mapping[str, float], parts: int) -> dict[str, float]:
    return {r: a / parts for r, a in amounts.items()}


def _sum(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {r: a.get(r, 0.0) + b.get(r, 0.0) for r in a.keys() | b.keys()}


def _type_nodes(kind: ComputeType, raw: Body) -> tuple[NodeCapacity, ...]:
    """One type's nodes: the listed largest with their free room as probed, the others as
    equal shares of the rest; what is in use is shared out too, so the totals (which the
    headroom filter reads) and the node count stay the status's."""
    listed = [quantities(entry) for entry in raw.get("largestFree") or []]
    count = int(raw.get("nodeCount") or 0)
    if not listed:  # an operator older than largestFree
        return (_node(kind, count, raw),)
    allocatable = quantities(raw.get("allocatable"))
    available = quantities(raw.get("available"))
    used = {r: max(a - available.get(r, 0.0), 0.0) for r, a in allocatable.items()}
    others = count - len(listed)
    if others <= 0:  # every node listed: what is in use sits on them
        in_use = _share(used, len(listed))
        return tuple(
            NodeCapacity(f"{kind.value} most free #{i}", _sum(free, in_use), in_use, kind)
            for i, free in enumerate(listed, 1)
        )
    rest = {r: max(available.get(r, 0.0) - sum(f.get(r, 0.0) for f in listed), 0.0) for r in used}
    share_used = _share(used, others)
    share_alloc = {r: u + rest[r] / others for r, u in share_used.items()}
    return (
        *(
            NodeCapacity(f"{kind.value} most free #{i}", free, {}, kind)
            for i, free in enumerate(listed, 1)
        ),
        *(
            NodeCapacity(f"{kind.value} other {j}/{others}", share_alloc, share_used, kind)
            for j in range(1, others + 1)
        ),
    )


def _nodes(status: Body) -> tuple[NodeCapacity, ...]:
    per_type: Mapping[str, Body] = status.get("byComputeType") or {}
    nodes: list[NodeCapacity] = []
    for kind in ComputeType:
        if kind.value in per_type:
            nodes += _type_nodes(kind, per_type[kind.value])
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


# In-flight reservations ------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """A job the operator still holds room for, as the hub's record shows it."""

    uid: str
    cluster: str  # the MemberCluster it was placed on
    request: JobRequest
    age_s: float  # since it was placed (or, Deferred, started)


def _last_counted(status: Body) -> datetime | None:
    """When the probe whose room the status shows began; None when the last probe failed (the
    room is from an earlier probe, at a time the status no longer says)."""
    if int(status.get("consecutiveFailures") or 0) > 0:
        return None
    return parse_rfc3339(status.get("lastProbeTime"))


def _since(status: Body) -> datetime | None:
    """When the operator promised the room: a Deferred job's start, else its decision."""
    started = (status.get("deferral") or {}).get("started")
    return parse_rfc3339(started or (status.get("placement") or {}).get("decidedAt"))


def _request(job: Body) -> JobRequest | None:
    """The job's room as the operator reserves it (pods × requests of its type); None for one
    that does not read (it was never placed, so holds nothing)."""
    meta = job.get("metadata") or {}
    try:
        parsed = ComputeJob.model_validate(
            {
                "metadata": {"name": meta.get("name") or "", "namespace": meta.get("namespace")},
                "spec": job.get("spec") or {},
            }
        )
        # The origin and pod template do not change what is reserved.
        return to_request(parsed, "", check_pod_policy=False)
    except (ValidationError, JobError):
        return None


def in_flight(jobs: Iterable[Body], members: Iterable[Body], now: datetime) -> list[InFlight]:
    """Jobs placed on these members whose pods their last probe had not counted, oldest first
    (the order the operator made the promises in)."""
    counted = {
        str((m.get("metadata") or {}).get("name")): _last_counted(m.get("status") or {})
        for m in members
    }
    out = []
    for job in jobs:
        status = job.get("status") or {}
        if status.get("phase") not in ACTIVE_PHASES:
            continue
        placed = (status.get("placement") or {}).get("cluster") or (status.get("remote") or {}).get(
            "cluster"
        )
        member = str(placed or "").split(CHILD_SEPARATOR, 1)[0]
        since = _since(status)
        if member not in counted or since is None:
            continue
        probe = counted[member]
        if probe is not None and probe > since:
            continue  # the probe began after the promise: taken as counted
        request = _request(job)
        uid = (job.get("metadata") or {}).get("uid")
        if request is not None and uid:
            out.append(InFlight(str(uid), member, request, (now - since).total_seconds()))
    return sorted(out, key=lambda f: -f.age_s)


def live_state(
    snapshots: Iterable[ClusterSnapshot],
    flights: Iterable[InFlight],
    latency: LatencyModel,
    ttl: float = RESERVATION_TTL_S,
) -> FleetState:
    """The fleet as the operator would place on it: the statuses' room less what it holds for
    jobs in flight, through the operator's own ``Capacity`` (expiry and fit as it applies)."""
    fresh = list(snapshots)
    capacity = Capacity(latency, ttl)
    now = time.monotonic()
    for flight in flights:
        capacity.reserve(flight.uid, flight.cluster, flight.request, made=now - flight.age_s)
    return capacity.state(0, lambda: fresh)
