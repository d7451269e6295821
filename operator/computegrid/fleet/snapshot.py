"""From a member's raw Nodes and Pods to the core's ``ClusterSnapshot`` (pure, no I/O).

Capacity is per node: allocatable minus the requests of the node's non-terminal pods (a pod
requests the larger of its containers' sum and any init container, as the kube-scheduler
counts). Power comes from the ``computegrid.io/*`` node labels, weighted by each node's
allocatable CPU so a big green node counts more than a small coal one; a node without the
labels does not vote. Pods not yet bound to a node still take capacity from the cluster:
they are charged to a pseudo-node so that the next decision does not double-book.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from computegrid.api import (
    LABEL_CARBON,
    LABEL_COMPUTE_TYPE,
    LABEL_PRICE,
    LABEL_RENEWABLE,
    ComputeType,
    MemberClusterSpec,
    QuantityError,
    parse_quantity,
)
from computegrid.scheduling import ClusterSnapshot, ClusterTaint, NodeCapacity, PowerMix

Body = Mapping[str, Any]
UNKNOWN_POWER = PowerMix(renewable_share=0.0, carbon_intensity=1000.0, price_per_kwh=1.0)


def quantities(raw: Mapping[str, Any] | None) -> dict[str, float]:
    """Parsed resource quantities; unparsable entries are skipped, not fatal."""
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        try:
            out[name] = float(parse_quantity(value))
        except QuantityError:
            continue
    return out


def _add(total: dict[str, float], more: Mapping[str, float], times: float = 1.0) -> None:
    for name, amount in more.items():
        total[name] = total.get(name, 0.0) + amount * times


def pod_requests(pod: Body) -> dict[str, float]:
    """What a pod takes from its node: max(sum of containers, each init container), + 1 pod."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for container in spec.get("containers") or []:
        _add(total, quantities((container.get("resources") or {}).get("requests")))
    for container in spec.get("initContainers") or []:
        init = quantities((container.get("resources") or {}).get("requests"))
        for name, amount in init.items():
            total[name] = max(total.get(name, 0.0), amount)
    total["pods"] = 1.0
    return total


def _requests_only(containers: Any) -> list[dict[str, Any]]:
    return [
        {"resources": {"requests": (c.get("resources") or {}).get("requests") or {}}}
        for c in containers or []
    ]


def pod_essence(pod: Body) -> dict[str, Any]:
    """What ``build_snapshot`` reads of a pod (its node, phase and requests), kept at list
    time so a probe of thousands of pods holds a few hundred bytes each, not the whole pod."""
    spec = pod.get("spec") or {}
    return {
        "spec": {
            "nodeName": spec.get("nodeName") or "",
            "containers": _requests_only(spec.get("containers")),
            "initContainers": _requests_only(spec.get("initContainers")),
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


def is_terminal(pod: Body) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def node_ready(node: Body) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _compute_type(labels: Mapping[str, str]) -> ComputeType:
    try:
        return ComputeType(labels.get(LABEL_COMPUTE_TYPE, ComputeType.GENERAL.value))
    except ValueError:
        return ComputeType.GENERAL


def power_mix(nodes: Iterable[tuple[Mapping[str, str], float]]) -> PowerMix | None:
    """Allocatable-weighted mean of the nodes' power labels; None when no node has them."""
    weights = 0.0
    sums = [0.0, 0.0, 0.0]
    for labels, weight in nodes:
        try:
            values = [float(labels[k]) for k in (LABEL_RENEWABLE, LABEL_CARBON, LABEL_PRICE)]
        except (KeyError, ValueError):
            continue
        weight = max(weight, 1e-9)
        weights += weight
        for i, value in enumerate(values):
            sums[i] += value * weight
    if weights == 0:
        return None
    return PowerMix(sums[0] / weights, sums[1] / weights, sums[2] / weights)


def build_snapshot(
    name: str,
    spec: MemberClusterSpec,
    nodes: list[Body],
    pods: list[Body],
    labels: Mapping[str, str] | None = None,
) -> ClusterSnapshot:
    """The member as the core sees it; only Ready, schedulable nodes offer capacity."""
    requested: dict[str, dict[str, float]] = {}
    for pod in pods:
        if is_terminal(pod):
            continue
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        _add(requested.setdefault(node_name, {}), pod_requests(pod))
    capacities: list[NodeCapacity] = []
    weighted: list[tuple[Mapping[str, str], float]] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        node_labels: Mapping[str, str] = meta.get("labels") or {}
        allocatable = quantities((node.get("status") or {}).get("allocatable"))
        if not node_ready(node) or (node.get("spec") or {}).get("unschedulable"):
            continue
        node_type = _compute_type(node_labels)
        capacities.append(
            NodeCapacity(
                meta.get("name", ""),
                allocatable,
                requested.get(meta.get("name", ""), {}),
                node_type,
            )
        )
        weighted.append((node_labels, allocatable.get("cpu", 0.0)))
    unbound = requested.get("", {})
    if unbound and capacities:
        # Charge pods the member's scheduler has not placed yet to the first node of the type
        # with most free CPU: coarse, but it keeps capacity from being promised twice.
        first = capacities[0]
        merged = dict(first.requested)
        _add(merged, unbound)
        capacities[0] = NodeCapacity(first.name, first.allocatable, merged, first.compute_type)
    power = power_mix(weighted) or UNKNOWN_POWER
    return ClusterSnapshot(
        name=name,
        hub=spec.hub,
        region=spec.region,
        location=spec.location,
        power=power,
        nodes=tuple(capacities),
        ready=True,
        taints=tuple(ClusterTaint(t.key, t.value, t.effect) for t in spec.taints),
        labels=dict(labels or {}),
        paired_with=frozenset(spec.paired_with),
    )


def totals(snapshot: ClusterSnapshot) -> tuple[dict[str, float], dict[str, float]]:
    """(allocatable, available) summed over the snapshot's nodes."""
    allocatable: dict[str, float] = {}
    available: dict[str, float] = {}
    for node in snapshot.nodes:
        _add(allocatable, node.allocatable)
        for resource in node.allocatable:
            available[resource] = available.get(resource, 0.0) + max(node.free(resource), 0.0)
    return allocatable, available


@dataclass(frozen=True)
class TypeRoom:
    """One compute type's nodes of a snapshot and their (allocatable, available) sums."""

    kind: ComputeType
    nodes: tuple[NodeCapacity, ...]
    allocatable: dict[str, float]
    available: dict[str, float]


def by_type(snapshot: ClusterSnapshot) -> list[TypeRoom]:
    """Each compute type the snapshot has nodes of, in ``ComputeType`` order, with its sums."""
    out = []
    for kind in ComputeType:
        nodes = tuple(n for n in snapshot.nodes if n.compute_type == kind)
        if nodes:
            out.append(TypeRoom(kind, nodes, *totals(replace(snapshot, nodes=nodes))))
    return out
