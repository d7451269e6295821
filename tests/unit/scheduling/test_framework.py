"""The cycle end to end: reservations, caches, and the national fleet's expected placements."""

from __future__ import annotations

import numpy as np
import pytest
from builders import cluster, job, state

from computegrid.api import ComputeType, LatencySensitivity
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.scheduling import (
    Decision,
    Diagnosis,
    FleetState,
    JobRequest,
    Scheduler,
    schedule_many,
)

GIB = 2**30


def test_schedule_many_reserves_capacity_as_it_goes() -> None:
    # One node of 64 cores: two jobs of 40 cores cannot both fit.
    fleet = state(cluster("qingyang", cpu=64))
    first, second = schedule_many([job(cpu=40), job(cpu=40)], fleet)
    assert isinstance(first, Decision)
    assert first.placed == {"qingyang-general-0": 1}
    assert isinstance(second, Diagnosis)
    assert "fits 0 of 1 pods" in second.reasons()["qingyang"]


def test_reserve_packs_the_fullest_node_first_and_release_gives_back() -> None:
    # Node 0 has 16 cores free, node 1 has 64: a 16-core pod goes to node 0, keeping node 1 whole.
    s = state(cluster("qingyang", cpu=64, nodes=2))
    s.node_free[0, s.resource_index["cpu"]] = 16.0
    s.cluster_free[0, s.resource_index["cpu"]] -= 48.0
    request = job(cpu=16, memory_gi=1)
    placed = s.reserve(0, request)
    assert placed == {"qingyang-general-0": 1}
    assert s.node_free[0, s.resource_index["cpu"]] == 0.0
    s.release(placed, request)
    assert s.node_free[0, s.resource_index["cpu"]] == 16.0


def test_reserve_fits_best_by_the_scarce_resource_not_by_whole_pods() -> None:
    # Three 8-GPU nodes with 7, 4 and 5 GPUs free. A 4-GPU pod fits once on each (7 // 4 =
    # 4 // 4 = 5 // 4 = 1), so counting whole pods ties them all and took the first, node 0,
    # leaving 3 GPUs that no 4- or 8-GPU pod can use. By the fractional fit (7/4 = 1.75,
    # 4/4 = 1.0, 5/4 = 1.25) it goes to node 1 and uses it up: nodes 0 and 2 keep 7 and 5.
    gpu = "nvidia.com/gpu"
    kind = ComputeType.INTELLIGENT
    s = state(cluster("qingyang", cpu=96, gpu=8, memory_gi=768, nodes=3, types=(kind,)))
    g = s.resource_index[gpu]
    for row, free in enumerate((7.0, 4.0, 5.0)):
        s.cluster_free[0, g] -= s.node_free[row, g] - free
        s.node_free[row, g] = free
    pod = job(cpu=32, gpu=4, memory_gi=256, kind=kind)
    assert s.reserve(0, pod) == {"qingyang-intelligent-1": 1}
    assert s.node_free[:, g].tolist() == [7.0, 0.0, 5.0]
    # Two pods of 2 GPUs: node 2 (5/2 = 2.5) before node 0 (7/2 = 3.5); both go there.
    assert s.reserve(0, job(cpu=8, gpu=2, memory_gi=64, kind=kind, pods=2)) == {
        "qingyang-intelligent-2": 2
    }
    assert s.node_free[:, g].tolist() == [7.0, 0.0, 1.0]
    assert s.cluster_free[0, g] == 8.0


def test_reserve_refuses_what_does_not_fit() -> None:
    s = state(cluster("qingyang", cpu=8))
    before = s.node_free.copy()
    with pytest.raises(ValueError, match="does not fit"):
        s.reserve(0, job(cpu=4, pods=3))  # 8 // 4 = 2 pods < 3
    assert np.array_equal(s.node_free, before)  # rolled back


def test_update_power_changes_the_next_decision() -> None:
    s = state(
        cluster("chengdu", name="a", carbon=200, price=0.5),
        cluster("qingyang", name="b", carbon=600, price=0.5),
    )
    scheduler = Scheduler()
    first = scheduler.schedule(job(), s)
    assert isinstance(first, Decision) and first.cluster.name == "a"
    s.update_power(np.array([700.0, 150.0]), s.renewable, s.price)
    second = scheduler.schedule(job(), s)
    assert isinstance(second, Decision) and second.cluster.name == "b"
    with pytest.raises(ValueError, match="one value per cluster"):
        s.update_power(np.array([1.0]), s.renewable, s.price)


def test_duplicate_cluster_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        state(cluster("qingyang", name="x"), cluster("chengdu", name="x"))


def national(
    origin: str,
    sensitivity: LatencySensitivity,
    kind: ComputeType = ComputeType.GENERAL,
    gpu: float = 0,
    **extra: object,
) -> Decision | Diagnosis:
    resources = {"cpu": 8.0, "memory": 32.0 * GIB}
    if gpu:
        resources["nvidia.com/gpu"] = gpu
    request = JobRequest(
        "t/j",
        origin,
        resources,
        2,
        kind,
        sensitivity,
        **extra,  # type: ignore[arg-type]
    )
    fleet = FleetState(load_national_fleet().snapshots(), load_latency_model())
    return Scheduler().schedule(request, fleet)


@pytest.mark.parametrize(
    ("origin", "sensitivity", "kind", "gpu", "expected"),
    [
        # Only Zhangjiakou (2.3 ms) is within 5 ms of Beijing; Horinger (6.1 ms) is not.
        ("beijing", LatencySensitivity.HIGH, ComputeType.INTELLIGENT, 1, "jingjinji-zhangjiakou"),
        # Wujiang 1.1 ms beats Wuhu 4.4 ms on latency (weight 6).
        ("shanghai", LatencySensitivity.HIGH, ComputeType.GENERAL, 0, "yangtze-delta-wujiang"),
        # Low: Sichuan's grid (140.4 g/kWh) is the greenest; not Inner Mongolia (684.9) or
        # Ningxia (642.3) on grid-average factors.
        (
            "shanghai",
            LatencySensitivity.LOW,
            ComputeType.INTELLIGENT,
            4,
            "chengdu-chongqing-tianfu",
        ),
        ("guangzhou", LatencySensitivity.LOW, ComputeType.GENERAL, 0, "chengdu-chongqing-tianfu"),
        # Medium from Chengdu: Tianfu is in the city (2 ms) and the greenest.
        ("chengdu", LatencySensitivity.MEDIUM, ComputeType.GENERAL, 0, "chengdu-chongqing-tianfu"),
        # Supercomputing from Shanghai, medium: Tianfu (24.9 ms) is out of budget → Wujiang.
        (
            "shanghai",
            LatencySensitivity.MEDIUM,
            ComputeType.SUPERCOMPUTING,
            0,
            "yangtze-delta-wujiang",
        ),
    ],
)
def test_national_fleet_placements(
    origin: str, sensitivity: LatencySensitivity, kind: ComputeType, gpu: float, expected: str
) -> None:
    result = national(origin, sensitivity, kind, gpu)
    assert isinstance(result, Decision)
    assert result.cluster.name == expected
    budget = {"high": 5.0, "medium": 20.0}.get(sensitivity.value)
    assert budget is None or result.latency_ms <= budget


def test_nothing_near_urumqi_for_a_high_job() -> None:
    result = national("wulumuqi", LatencySensitivity.HIGH, ComputeType.INTELLIGENT, 1)
    assert isinstance(result, Diagnosis)
    reasons = result.reasons()
    assert len(reasons) == 10
    assert reasons["chengdu-chongqing-chongqing"].startswith("ComputeType:")
    assert all(
        r.startswith("LatencyBudget: RTT")
        for n, r in reasons.items()
        if "chongqing-chongqing" not in n
    )
