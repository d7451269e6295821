"""The hub's record of a member, read back as the core's snapshot (kubectl computegrid)."""

from __future__ import annotations

from typing import Any

import pytest

from computegrid.api import ComputeType, MemberClusterSpec, MemberClusterStatus
from computegrid.cli.kubectl import fleet_rows, render_fleet, render_why, why_report
from computegrid.fleet import build_snapshot, failed_status, ready_status, totals
from computegrid.fleet.live import StatusError, count_jobs, snapshot_from_status

SPEC = {
    "hub": "gansu",
    "region": "west",
    "location": "qingyang",
    "kubeconfigSecretRef": {"name": "g"},
    "taints": [{"key": "dedicated", "value": "ai"}],
    "pairedWith": ["shanghai"],
}
NOW = "2026-01-01T00:00:00Z"


def node(name: str, kind: str, allocatable: dict[str, str], carbon: float) -> dict[str, Any]:
    labels = {
        "computegrid.io/compute-type": kind,
        "computegrid.io/renewable-share": "0.6",
        "computegrid.io/carbon-intensity": str(carbon),
        "computegrid.io/power-price": "0.3",
    }
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(node_name: str, requests: dict[str, str]) -> dict[str, Any]:
    return {
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": "Running"},
    }


def member_body() -> tuple[dict[str, Any], Any]:
    nodes = [
        node("cpu-1", "general", {"cpu": "64", "memory": "256Gi", "pods": "110"}, 200.0),
        node("cpu-2", "general", {"cpu": "32", "memory": "128Gi", "pods": "110"}, 200.0),
        node(
            "gpu-1",
            "intelligent",
            {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "8", "pods": "110"},
            200.0,
        ),
    ]
    pods = [pod("cpu-1", {"cpu": "10"}), pod("gpu-1", {"cpu": "4", "nvidia.com/gpu": "3"})]
    snapshot = build_snapshot("gansu-qingyang", MemberClusterSpec.model_validate(SPEC), nodes, pods)
    status = ready_status(snapshot, None, NOW)
    body = {
        "metadata": {"name": "gansu-qingyang", "labels": {"tier": "a"}},
        "spec": SPEC,
        "status": status,
    }
    return body, snapshot


def test_status_per_type_round_trips_to_the_same_free_room() -> None:
    body, probed = member_body()
    MemberClusterStatus.model_validate(body["status"])  # the API type (and so the CRD) takes it
    live = snapshot_from_status(body)
    assert live.ready and not live.not_ready_reason
    assert live.compute_types == {ComputeType.GENERAL, ComputeType.INTELLIGENT}
    general = [n for n in live.nodes if n.compute_type == ComputeType.GENERAL]
    intelligent = [n for n in live.nodes if n.compute_type == ComputeType.INTELLIGENT]
    # Each node's free room as probed (largestFree), most free first, one live node a node.
    assert [n.free("cpu") for n in general] == [54, 32]
    assert [n.free("nvidia.com/gpu") for n in intelligent] == [5]
    assert intelligent[0].free("cpu") == 28
    # Summed over types, the live view holds what the probe saw.
    assert totals(live) == totals(probed)
    assert live.power == probed.power
    assert (live.hub, live.region.value, live.location) == ("gansu", "west", "qingyang")
    assert live.taints[0].key == "dedicated" and live.paired_with == {"shanghai"}
    assert live.labels == {"tier": "a"}


def test_not_ready_and_unprobed_members() -> None:
    body, _ = member_body()
    down = failed_status(body["status"]["conditions"], 3, 3, "connection refused", NOW)
    body["status"] = {**body["status"], **down}
    live = snapshot_from_status(body)
    assert not live.ready and "connection refused" in live.not_ready_reason
    fresh = snapshot_from_status({"metadata": {"name": "new"}, "spec": SPEC})
    assert not fresh.ready and fresh.not_ready_reason.startswith("not probed yet")
    assert fresh.nodes == () and fresh.power.carbon_intensity == 1000.0  # unknown power: worst


def test_a_status_without_per_type_room_gives_the_totals_to_the_first_type() -> None:
    body, _ = member_body()
    del body["status"]["byComputeType"]
    live = snapshot_from_status(body)
    general, intelligent = live.nodes
    assert general.compute_type == ComputeType.GENERAL and general.free("cpu") == 128 - 14
    assert intelligent.compute_type == ComputeType.INTELLIGENT and not intelligent.allocatable


def test_a_bad_spec_names_the_member_and_field() -> None:
    with pytest.raises(StatusError, match=r"^MemberCluster x: spec\.region"):
        snapshot_from_status({"metadata": {"name": "x"}, "spec": {**SPEC, "region": "north"}})


def job(name: str, cluster: str | None, phase: str) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if cluster:
        status["remote"] = {"cluster": cluster, "namespace": "t", "name": name}
    return {"metadata": {"name": name, "namespace": "t"}, "status": status}


def test_jobs_counted_by_remote_cluster() -> None:
    counts = count_jobs([job("a", "x", "Running"), job("b", "x", "Succeeded"),
                         job("c", "y", "Scheduled"), job("d", None, "Pending")])  # fmt: skip
    assert counts.total == {"x": 2, "y": 1}
    assert counts.active == {"x": 1, "y": 1}


def test_fleet_table() -> None:
    body, _ = member_body()
    rows = fleet_rows(
        [body], [job("a", "gansu-qingyang", "Running"), job("b", "gansu-qingyang", "Failed")]
    )
    [row] = rows
    assert row["free"]["intelligent"]["nvidia.com/gpu"] == "5/8"
    assert row["free"]["general"]["cpu"] == "86/96"
    assert (row["activeJobs"], row["jobs"]) == (1, 2)
    table = render_fleet(rows)
    assert "gansu-qingyang" in table and "nvidia.com/gpu 5/8" in table and "1/2" in table
    assert render_fleet([]).startswith("no MemberClusters")


def test_why_renders_the_recorded_decision_like_explain() -> None:
    placed = {
        "metadata": {"name": "render", "namespace": "t",
                     "annotations": {"computegrid.io/origin": "guangzhou",
                                     "computegrid.io/latency-sensitivity": "low"}},
        "spec": {"computeType": "intelligent"},
        "status": {
            "phase": "Running",
            "remote": {"cluster": "gansu-qingyang", "namespace": "t", "name": "render-x"},
            "placement": {
                "cluster": "gansu-qingyang", "hub": "gansu", "region": "west", "latencyMs": 31.5,
                "carbonIntensity": 210.0, "pricePerKWh": 0.3, "score": 88.2,
                "breakdown": {"CarbonIntensity": 90.0, "PowerPrice": 80.0},
                "reasons": ["lowest carbon of the feasible clusters"],
                "alternatives": [{"cluster": "ningxia-zhongwei", "score": 80.1}],
                "nearestCluster": "guangdong-shaoguan", "carbonSavedGPerHour": 1200.0,
                "costSavedCnyPerHour": 1.5, "decidedAt": NOW,
            },
        },
    }  # fmt: skip
    report = why_report(placed)
    text = render_why(report)
    assert "→ gansu-qingyang (gansu, west)  score 88.2" in text
    assert "vs nearest guangdong-shaoguan: saves 1200 gCO2e/h" in text
    assert "ningxia-zhongwei" in text and "runnerup" in text
    assert "why: lowest carbon of the feasible clusters" in text
    assert "Job t/render-x on gansu-qingyang" in text
    assert report["latencyBudgetMs"] is None  # low: unbounded
    pending = why_report({"metadata": {"name": "p", "namespace": "t"}, "spec": {},
                          "status": {"phase": "Pending", "message": "no cluster has 64 GPUs"}})  # fmt: skip
    assert "→ Pending: no cluster has 64 GPUs" in render_why(pending)
    pending["live"] = "0/1 clusters can take the job: 1 ResourcesFit"
    assert "on the live fleet now (the table): 0/1 clusters can take" in render_why(pending)
