"""MemberCluster ``.status`` bodies and the Ready condition's transitions (pure).

Ready keeps its ``lastTransitionTime`` unless its status changes, so ``kubectl describe``
says since when a member is down, and the operator's grace period is measured from it.

Capacity is written per compute type, with the free room of the few nodes of each type that
have most free (``largestFree``): readers that see only the hub (``kubectl computegrid``, a
parent hub) can then check a pod against one node's room, as the operator's own decision
does, instead of against the type's sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from computegrid.api import GPU, ComputeType, format_quantity
from computegrid.api.conditions import (
    condition,
    merge_conditions,
)
from computegrid.api.member_cluster import LARGEST_FREE
from computegrid.fleet.snapshot import by_type, totals
from computegrid.scheduling import ClusterSnapshot, NodeCapacity


def _render(amounts: Mapping[str, float]) -> dict[str, str]:
    return {r: format_quantity(a, r) for r, a in sorted(amounts.items())}


def node_free(node: NodeCapacity) -> dict[str, float]:
    """What one node has left of each resource it offers (never below zero)."""
    return {r: max(node.free(r), 0.0) for r in node.allocatable}


def _most_free_first(node: NodeCapacity) -> tuple[float, float, float, str]:
    # Descending by GPUs, then CPU, then memory: the resource a job of the type is scarcest
    # in decides (a general node has no GPUs, so CPU does); the name makes ties stable.
    return (-max(node.free(GPU), 0.0), -max(node.free("cpu"), 0.0),
            -max(node.free("memory"), 0.0), node.name)  # fmt: skip


def largest_free(
    nodes: tuple[NodeCapacity, ...], limit: int = LARGEST_FREE
) -> list[dict[str, float]]:
    """The free room of the ``limit`` nodes with most free, most free first."""
    return [node_free(n) for n in sorted(nodes, key=_most_free_first)[:limit]]


def by_compute_type(snapshot: ClusterSnapshot) -> dict[str, dict[str, Any]]:
    """Allocatable, available, node count and the largest nodes' free room per compute type
    (status.byComputeType)."""
    return {
        room.kind.value: {
            "allocatable": _render(room.allocatable),
            "available": _render(room.available),
            "nodeCount": len(room.nodes),
            "largestFree": [_render(free) for free in largest_free(room.nodes)],
        }
        for room in by_type(snapshot)
    }


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
