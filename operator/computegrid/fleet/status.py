"""MemberCluster ``.status`` bodies and the Ready condition's transitions (pure).

Ready keeps its ``lastTransitionTime`` unless its status changes, so ``kubectl describe``
says since when a member is down, and the operator's grace period is measured from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from computegrid.api import ComputeType, format_quantity
from computegrid.api.conditions import (
    condition,
    merge_conditions,
)
from computegrid.fleet.snapshot import totals
from computegrid.scheduling import ClusterSnapshot


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
