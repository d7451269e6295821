"""Live ``explain`` judges fit as the operator does: per node, less the room held in flight.

The operator decides on the member's real nodes (``build_snapshot`` of its Nodes and Pods);
``kubectl computegrid`` sees only the status the operator wrote from that snapshot
(``ready_status``). Each case runs the same job through the core on both views and compares
the outcome and the reason given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from computegrid.api import ComputeType, MemberClusterSpec, MemberClusterStatus
from computegrid.api.member_cluster import LARGEST_FREE
from computegrid.fleet import build_snapshot, ready_status
from computegrid.fleet.capacity import RESERVATION_TTL_S, Capacity
from computegrid.fleet.live import in_flight, live_state, snapshot_from_status
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import (
    ClusterSnapshot,
    Decision,
    FleetState,
    JobRequest,
    Scheduler,
)

SPEC = {"hub": "gansu", "region": "west", "location": "qingyang",
        "kubeconfigSecretRef": {"name": "g"}}  # fmt: skip
NAME = "gansu-qingyang"
PROBED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATENCY = load_latency_model()


def rfc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, kind: str, cpu: int, gpu: int = 0) -> dict[str, Any]:
    allocatable = {"cpu": str(cpu), "memory": "256Gi", "pods": "110"}
    if gpu:
        allocatable["nvidia.com/gpu"] = str(gpu)
    return {"metadata": {"name": name, "labels": {"computegrid.io/compute-type": kind}},
            "status": {"allocatable": allocatable,
                       "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip


def pod(node_name: str, cpu: int, gpu: int = 0) -> dict[str, Any]:
    requests = {"cpu": str(cpu)} | ({"nvidia.com/gpu": str(gpu)} if gpu else {})
    return {"spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]},
            "status": {"phase": "Running"}}  # fmt: skip


# Six general nodes (more than LARGEST_FREE, so some are summarised) with free CPU
# 54, 32, 32, 16, 16, 16 (166 in all); four GPU nodes with 5 of 8 GPUs free each (20 in all).
NODES = [node("c1", "general", 64), node("c2", "general", 32), node("c3", "general", 32),
         node("c4", "general", 16), node("c5", "general", 16), node("c6", "general", 16),
         *(node(f"g{i}", "intelligent", 64, gpu=8) for i in range(4))]  # fmt: skip
PODS = [pod("c1", 10), *(pod(f"g{i}", 4, gpu=3) for i in range(4))]


def views(
    nodes: list[Any] = NODES, pods: list[Any] = PODS
) -> tuple[ClusterSnapshot, dict[str, Any]]:
    """(the operator's snapshot of the member, the MemberCluster as the hub holds it)."""
    probed = build_snapshot(NAME, MemberClusterSpec.model_validate(SPEC), nodes, pods)
    status = ready_status(probed, None, rfc(PROBED))
    MemberClusterStatus.model_validate(status)  # the API type (and so the CRD) takes it
    return probed, {"metadata": {"name": NAME}, "spec": SPEC, "status": status}


def job(cpu: float, parallelism: int = 1, gpu: int = 0) -> JobRequest:
    resources = {"cpu": cpu} | ({"nvidia.com/gpu": float(gpu)} if gpu else {})
    kind = ComputeType.INTELLIGENT if gpu else ComputeType.GENERAL
    return JobRequest("t/j", "lanzhou", resources, parallelism, kind)


def outcome(request: JobRequest, state: FleetState) -> str:
    result = Scheduler().schedule(request, state)
    if isinstance(result, Decision):
        return f"placed on {result.cluster.name}"
    return result.reasons()[NAME]


def test_status_lists_the_largest_nodes_free_room_bounded() -> None:
    _, member = views()
    general = member["status"]["byComputeType"]["general"]
    assert general["nodeCount"] == 6
    assert [e["cpu"] for e in general["largestFree"]] == ["54", "32", "32", "16"]
    assert len(general["largestFree"]) == LARGEST_FREE
    intelligent = member["status"]["byComputeType"]["intelligent"]["largestFree"]
    assert [e["nvidia.com/gpu"] for e in intelligent] == ["5"] * 4


FIT = "ResourcesFit: fits {} of {} pods of {} type (most free on one node of the type: {})"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # Fits the type's total (166 cpu) but no node (54 at most): refused, as the operator does.
        (job(60), FIT.format(0, 1, "general", "cpu 54")),
        (job(54), "placed on gansu-qingyang"),
        # Pods counted node by node: 3 + 2 + 2 + 1 on the listed nodes, 1 + 1 on the others.
        (job(16, parallelism=10), "placed on gansu-qingyang"),
        (job(16, parallelism=11), FIT.format(10, 11, "general", "cpu 54")),
        # 20 GPUs free, 5 a node: a 6-GPU pod fits nowhere.
        (job(4, gpu=6), FIT.format(0, 1, "intelligent", "cpu 60, nvidia.com/gpu 5")),
        (job(4, gpu=5, parallelism=4), "placed on gansu-qingyang"),
    ],
)
def test_live_fit_agrees_with_the_operator(request_: JobRequest, expected: str) -> None:
    probed, member = views()
    operator = outcome(request_, FleetState([probed], LATENCY))
    live = outcome(request_, live_state([snapshot_from_status(member)], [], LATENCY))
    assert operator == expected
    assert live == operator


def test_a_status_without_largest_free_keeps_the_type_total() -> None:
    """An older operator's status: one node per type with its whole free room (documented)."""
    probed, member = views()
    for per_type in member["status"]["byComputeType"].values():
        del per_type["largestFree"]
    assert outcome(job(60), live_state([snapshot_from_status(member)], [], LATENCY)) == (
        "placed on gansu-qingyang"
    )
    assert outcome(job(60), FleetState([probed], LATENCY)).startswith("ResourcesFit")


def test_the_unlisted_nodes_are_shares_no_larger_than_the_largest_of_them() -> None:
    nodes = [node(f"c{i}", "general", cpu) for i, cpu in enumerate((64, 48, 40, 32, 24, 8, 4))]
    probed, member = views(nodes, [])
    live = snapshot_from_status(member)
    free = sorted((n.free("cpu") for n in live.nodes), reverse=True)
    assert free == [64, 48, 40, 32, 12, 12, 12]  # (24 + 8 + 4) / 3: no more than 24
    # The live view holds the member's node count and totals (the headroom filter reads them).
    assert len(live.nodes) == member["status"]["nodeCount"] == 7
    assert sum(n.allocatable["cpu"] for n in live.nodes) == 64 + 48 + 40 + 32 + 24 + 8 + 4
    # The limit, stated: 8 pods of 21 cpu fit 3 + 2 + 1 + 1 on the listed nodes and one on
    # the 24-cpu node the status does not list; the 12-cpu shares cannot show that one.
    assert outcome(job(21, parallelism=8), FleetState([probed], LATENCY)).startswith("placed")
    assert outcome(job(21, parallelism=8), live_state([live], [], LATENCY)).startswith(
        "ResourcesFit: fits 7 of 8"
    )


def test_equal_shares_can_also_count_more_pods_than_the_unlisted_nodes_hold() -> None:
    """The other way round: unlisted nodes with 5 and 3 cpu free take one 4-cpu pod; their
    shares (4 each) take two. 16 + 12 + 10 + 8 pods on the listed nodes."""
    nodes = [node(f"c{i}", "general", cpu) for i, cpu in enumerate((64, 48, 40, 32, 5, 3))]
    probed, member = views(nodes, [])
    request = job(4, parallelism=48)
    assert outcome(request, FleetState([probed], LATENCY)) == FIT.format(
        47, 48, "general", "cpu 64"
    )
    assert outcome(request, live_state([snapshot_from_status(member)], [], LATENCY)).startswith(
        "placed"
    )


def placed(
    uid: str, cpu: int, at: dt.datetime, phase: str = "Scheduled", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": uid, "namespace": "t", "uid": uid,
                     "annotations": {"computegrid.io/origin": "lanzhou"}},
        "spec": {"computeType": "general", "parallelism": 1, "resources": {"cpu": str(cpu)},
                 "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"phase": phase, "placement": {"cluster": NAME, "decidedAt": rfc(at)},
                   "remote": {"cluster": NAME, "namespace": "t", "name": uid}, **status},
    }  # fmt: skip


LATER = PROBED + dt.timedelta(seconds=5)
EARLIER = PROBED - dt.timedelta(seconds=5)


@pytest.mark.parametrize(
    ("jobs", "now", "held"),
    [
        # Placed after the probe began: its pods are not in the room shown.
        ([placed("a", 40, LATER)], LATER, ["a"]),
        # Placed before the probe began: taken as counted by it.
        ([placed("a", 40, EARLIER)], LATER, []),
        # Placed after, but longer ago than the operator holds a promise: expired.
        ([placed("a", 40, LATER)], LATER + dt.timedelta(seconds=RESERVATION_TTL_S + 1), []),
        # Finished, or never placed: nothing held.
        ([placed("a", 40, LATER, "Succeeded"), placed("b", 40, LATER, "Pending")], LATER, []),
        # A Deferred job holds room from its start, not its decision.
        ([placed("a", 40, EARLIER, deferral={"started": rfc(LATER)})], LATER, ["a"]),
    ],
)
def test_in_flight_jobs(jobs: list[dict[str, Any]], now: dt.datetime, held: list[str]) -> None:
    _, member = views()
    flights = in_flight(jobs, [member], now)
    state = live_state([snapshot_from_status(member)], flights, LATENCY)
    assert sorted(f.uid for f in flights if f.age_s < RESERVATION_TTL_S) == held
    # What is held comes off the room: 166 + 4 × 60 free cpu, 40 a held job.
    assert state.cluster_totals()[1][0, state.resource_index["cpu"]] == 406 - 40 * len(held)


def test_after_a_failed_probe_every_recent_job_is_held() -> None:
    _, member = views()
    member["status"] |= {"consecutiveFailures": 1, "lastProbeTime": rfc(LATER)}
    assert [f.uid for f in in_flight([placed("a", 40, EARLIER)], [member], LATER)] == ["a"]


def test_reservations_reduce_room_as_the_operators_do() -> None:
    """A 40-cpu job in flight takes the one node it fits (54 free): a 33-cpu job no longer fits
    anywhere, on the operator's capacity and live alike, for the same reason."""
    probed, member = views()
    jobs = [placed("a", 40, LATER)]
    live = live_state([snapshot_from_status(member)], in_flight(jobs, [member], LATER), LATENCY)
    capacity = Capacity(LATENCY)
    capacity.reserve("a", NAME, job(40))
    operator = capacity.state(0, lambda: [probed])
    expected = (
        "ResourcesFit: fits 0 of 1 pods of general type (most free on one node of the type: cpu 32)"
    )
    assert outcome(job(33), operator) == expected
    assert outcome(job(33), live) == expected
    # Without the reservation both place it.
    assert outcome(job(33), FleetState([probed], LATENCY)).startswith("placed")
    assert outcome(job(33), live_state([snapshot_from_status(member)], [], LATENCY)).startswith(
        "placed"
    )
