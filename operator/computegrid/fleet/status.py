"""MemberCluster ``.status`` bodies and the Ready condition's transitions (pure).

Ready keeps its ``lastTransitionTime`` unless its status changes, so ``kubectl describe``
says since when a member is down, and the operator's grace period is measured from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from computegrid.api import ComputeType, format_quantity
from computegrid.fleet.snapshot import totals
from computegrid.scheduling import ClusterSnapshot


def now_rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def find_condition(
    conditions: list[Mapping[str, Any]] | None, kind: str
) -> Mapping[str, Any] | None:
    for condition in conditions or []:
        if condition.get("type") == kind:
            return condition
    return None


def condition(
    previous: list[Mapping[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
) -> dict[str, Any]:
    """A condition whose lastTransitionTime moves only when its status does."""
    old = find_condition(previous, kind)
    since = now
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        since = str(old["lastTransitionTime"])
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": since,
    }


def merge_conditions(
    previous: list[Mapping[str, Any]] | None, *updates: dict[str, Any]
) -> list[dict[str, Any]]:
    """The previous conditions with ``updates`` replacing those of the same type."""
    kinds = {u["type"] for u in updates}
    kept = [dict(c) for c in previous or [] if c.get("type") not in kinds]
    return sorted([*kept, *updates], key=lambda c: str(c["type"]))


def _render(amounts: Mapping[str, float]) -> dict[str, str]:
    return {r: format_quantity(a, r) for r, a in sorted(amounts.items())}


def by_compute_type(snapshot: ClusterSnapshot) -> dict[str, dict[str, Any]]:
    """Allocatable, available and node count per compute type (status.byComputeType)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in ComputeType:
        nodes = tuple(n for n in snapshot.nodes if n.compute_type == kind)
        if not nodes:
            continue
        allocatable, available = totals(replace(snapshot, nodes=nodes))
        out[kind.value] = {
            "allocatable": _render(allocatable),
            "available": _render(available),
            "nodeCount": len(nodes),
        }
    return out


def ready_status(
    snapshot: ClusterSnapshot, previous: list[Mapping[str, Any]] | None, now: str
) -> dict[str, Any]:
    """The status body after a successful probe."""
    allocatable, available = totals(snapshot)
    types = sorted({n.compute_type for n in snapshot.nodes}, key=list(ComputeType).index)
    ready = condition(
        previous,
        "Ready",
        "True",
        "ProbeSucceeded",
        f"{len(snapshot.nodes)} ready nodes",
        now,
    )
    return {
        "conditions": merge_conditions(previous, ready),
        "allocatable": _render(allocatable),
        "available": _render(available),
        "computeTypes": [t.value for t in types],
        "byComputeType": by_compute_type(snapshot),
        "power": {
            "renewableShare": round(snapshot.power.renewable_share, 4),
            "carbonIntensity": round(snapshot.power.carbon_intensity, 2),
            "pricePerKWh": round(snapshot.power.price_per_kwh, 4),
        },
        "nodeCount": len(snapshot.nodes),
        "lastProbeTime": now,
        "consecutiveFailures": 0,
    }


def failed_status(
    previous: list[Mapping[str, Any]] | None,
    failures: int,
    threshold: int,
    error: str,
    now: str,
) -> dict[str, Any]:
    """The status body after a failed probe: NotReady once ``threshold`` failures in a row."""
    body: dict[str, Any] = {"lastProbeTime": now, "consecutiveFailures": failures}
    if failures >= threshold:
        ready = condition(
            previous,
            "Ready",
            "False",
            "ProbeFailed",
            f"{failures} probes failed in a row; last: {error}",
            now,
        )
        body["conditions"] = merge_conditions(previous, ready)
    return body
