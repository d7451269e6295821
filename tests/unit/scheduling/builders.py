"""Tiny builders for table-driven tests: ``cluster("qingyang", cpu=64, gpu=8, carbon=477)``."""

from __future__ import annotations

from computegrid.api import ComputeType, LatencySensitivity, Region
from computegrid.scheduling import (
    ClusterSnapshot,
    ClusterTaint,
    FleetState,
    JobRequest,
    LatencyModel,
    NodeCapacity,
    PowerMix,
)

GIB = 2**30

# Three cities on a line of longitude-free toy coordinates are awkward; use a matrix instead:
# every RTT is given, so each test's arithmetic is visible here.
CITIES = {
    "beijing": (40.0, 116.4),
    "zhangjiakou": (40.8, 114.9),
    "qingyang": (35.7, 107.7),
    "chengdu": (30.7, 104.0),
    "shanghai": (31.2, 121.5),
}
MATRIX = {
    ("beijing", "zhangjiakou"): 2.3,
    ("beijing", "qingyang"): 13.6,
    ("beijing", "chengdu"): 22.9,
    ("beijing", "shanghai"): 16.2,
    ("shanghai", "qingyang"): 20.6,
    ("shanghai", "chengdu"): 24.9,
    ("shanghai", "zhangjiakou"): 18.3,
    ("qingyang", "chengdu"): 9.7,
    ("qingyang", "zhangjiakou"): 12.8,
    ("chengdu", "zhangjiakou"): 22.3,
}
LATENCY = LatencyModel(
    coordinates=CITIES,
    matrix={**MATRIX, **{(b, a): v for (a, b), v in MATRIX.items()}},
    intra_city_ms=2.0,
)


def cluster(
    location: str,
    *,
    name: str | None = None,
    cpu: float = 64,
    gpu: float = 0,
    memory_gi: float = 256,
    nodes: int = 1,
    used_cpu: float = 0,
    carbon: float = 500,
    renewable: float = 0.3,
    price: float = 0.5,
    region: Region = Region.WEST,
    ready: bool = True,
    types: tuple[ComputeType, ...] = (ComputeType.GENERAL,),
    taints: tuple[ClusterTaint, ...] = (),
    labels: dict[str, str] | None = None,
    paired: frozenset[str] = frozenset(),
) -> ClusterSnapshot:
    """A cluster of ``nodes`` identical nodes per compute type, each with the given sizes."""
    node_list = []
    for kind in types:
        for i in range(nodes):
            alloc = {"cpu": cpu, "memory": memory_gi * GIB, "pods": 110.0}
            if gpu:
                alloc["nvidia.com/gpu"] = gpu
            node_list.append(
                NodeCapacity(f"{name or location}-{kind.value}-{i}", alloc, {"cpu": used_cpu}, kind)
            )
    return ClusterSnapshot(
        name=name or location,
        hub=name or location,
        region=region,
        location=location,
        power=PowerMix(renewable, carbon, price),
        nodes=tuple(node_list),
        ready=ready,
        not_ready_reason="" if ready else "3 probes failed",
        taints=taints,
        labels=labels or {},
        paired_with=paired,
    )


def job(
    origin: str = "beijing",
    *,
    cpu: float = 4,
    gpu: float = 0,
    memory_gi: float = 8,
    pods: int = 1,
    kind: ComputeType = ComputeType.GENERAL,
    sensitivity: LatencySensitivity = LatencySensitivity.LOW,
    **extra: object,
) -> JobRequest:
    resources = {"cpu": cpu, "memory": memory_gi * GIB}
    if gpu:
        resources["nvidia.com/gpu"] = gpu
    return JobRequest(
        name="team-a/job",
        origin=origin,
        pod_resources=resources,
        parallelism=pods,
        compute_type=kind,
        sensitivity=sensitivity,
        **extra,  # type: ignore[arg-type]
    )


def state(*clusters: ClusterSnapshot) -> FleetState:
    return FleetState(list(clusters), LATENCY)
