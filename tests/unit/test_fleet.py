"""Member snapshots and status bodies from raw Nodes and Pods; the registry with a fake member."""

from __future__ import annotations

import asyncio
from typing import Any

from computegrid.api import ComputeType, MemberClusterSpec
from computegrid.fleet import (
    Fleet,
    build_snapshot,
    failed_status,
    pod_essence,
    pod_requests,
    probe,
    ready_status,
)
from computegrid.lifecycle import Health
from computegrid.lifecycle.mirror import copy_of

SPEC = MemberClusterSpec.model_validate(
    {
        "hub": "gansu",
        "region": "west",
        "location": "qingyang",
        "kubeconfigSecretRef": {"name": "g"},
        "taints": [{"key": "dedicated", "value": "ai"}],
    }
)


def node(name: str, cpu: str, kind: str, carbon: float, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "computegrid.io/compute-type": kind,
                "computegrid.io/renewable-share": "0.5",
                "computegrid.io/carbon-intensity": str(carbon),
                "computegrid.io/power-price": "0.4",
            },
        },
        "status": {
            "allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(node_name: str, cpu: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"requests": {"cpu": cpu}}}],
        },
        "status": {"phase": phase},
    }


def test_pod_requests_take_the_larger_of_containers_and_init() -> None:
    body = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "500m"}}},
                {"resources": {"requests": {"cpu": "1"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
        }
    }
    assert pod_requests(body) == {"cpu": 2.0, "memory": 2.0**30, "pods": 1.0}


def test_a_pod_cut_to_its_essence_counts_the_same() -> None:
    """Probes keep only a pod's node, phase and requests from each listed page."""
    full = {
        "metadata": {"name": "p", "managedFields": [{"manager": "kubelet"}] * 5},
        "spec": {
            "nodeName": "a",
            "containers": [
                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}},
                {"name": "d", "image": "y"},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
            "volumes": [{"name": "v"}] * 10,
        },
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled"}]},
    }
    cut = pod_essence(full)
    assert pod_requests(cut) == pod_requests(full) == {"cpu": 3.0, "memory": 2.0**30, "pods": 1.0}
    nodes = [node("a", "64", "general", 100.0)]
    pods = [full, pod("a", "4", phase="Succeeded"), pod("", "2")]
    whole = build_snapshot("g", SPEC, nodes, pods)
    assert build_snapshot("g", SPEC, nodes, [pod_essence(p) for p in pods]) == whole
    assert len(repr(cut)) < len(repr(full)) / 2


def test_snapshot_capacity_power_and_taints() -> None:
    nodes = [
        node("a", "64", "general", 100.0),
        node("b", "32", "intelligent", 400.0),
        node("down", "64", "general", 900.0, ready=False),
    ]
    pods = [pod("a", "10"), pod("a", "4", phase="Succeeded"), pod("b", "2")]
    snap = build_snapshot("gansu-qingyang", SPEC, nodes, pods)
    free = {n.name: n.free("cpu") for n in snap.nodes}
    assert free == {"a": 54.0, "b": 30.0}  # terminal pods and NotReady nodes do not count
    assert snap.compute_types == frozenset({ComputeType.GENERAL, ComputeType.INTELLIGENT})
    # CPU-weighted: (100*64 + 400*32) / 96 = 200
    assert snap.power.carbon_intensity == 200.0
    assert snap.taints[0].key == "dedicated"


def test_ready_status_then_failures() -> None:
    snap = build_snapshot("g", SPEC, [node("a", "64", "general", 100.0)], [pod("a", "16")])
    body = ready_status(snap, None, "2026-01-01T00:00:00Z")
    assert body["available"]["cpu"] == "48" and body["allocatable"]["cpu"] == "64"
    assert body["conditions"][0]["status"] == "True"
    again = ready_status(snap, body["conditions"], "2026-01-01T00:01:00Z")
    assert again["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # unchanged
    once = failed_status(again["conditions"], 1, 3, "timeout", "2026-01-01T00:02:00Z")
    assert "conditions" not in once  # one failure is not NotReady yet
    down = failed_status(again["conditions"], 3, 3, "timeout", "2026-01-01T00:03:00Z")
    ready = down["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ProbeFailed")
    assert ready["lastTransitionTime"] == "2026-01-01T00:03:00Z"


class FakeMember:
    name = "g"

    def __init__(self) -> None:
        self.up = True

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("refused")

    def list_nodes(self) -> list[dict[str, Any]]:
        self._check()
        return [node("a", "64", "general", 100.0)]

    def list_pods(self) -> list[dict[str, Any]]:
        self._check()
        return []

    def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        self._check()
        return [{"metadata": {"labels": {"computegrid.io/job-uid": "u1"}}}]

    def close(self) -> None:
        pass


class Watching:
    """Stands for a running Job watch (the view asks only whether there is one)."""

    def stop(self) -> None:
        pass


def test_registry_marks_not_ready_after_threshold() -> None:
    member = FakeMember()
    fleet = Fleet(None, hub_name="h", client_factory=lambda name, spec: member, threshold=2)
    state = fleet.register("g", SPEC, {})
    state.watch = Watching()  # type: ignore[assignment]

    async def scenario() -> list[bool]:
        seen = [(await probe(fleet, "g", None)).ready]
        member.up = False
        seen.append((await probe(fleet, "g", None)).ready)
        seen.append((await probe(fleet, "g", None)).ready)
        return seen

    try:
        assert fleet.view("g", "u1").health == Health.UNKNOWN  # not probed, not synced
        assert asyncio.run(scenario()) == [True, True, False]
        assert fleet.snapshots()[0].ready is False
        assert fleet.view("g", "u1").health == Health.UNREACHABLE
    finally:
        fleet.close()


def test_the_view_needs_a_synced_watch_to_call_a_job_absent() -> None:
    fleet = Fleet(None, hub_name="h", client_factory=lambda name, spec: FakeMember())
    state = fleet.register("g", SPEC, {})
    state.watch = Watching()  # type: ignore[assignment]
    state.ready = True
    try:
        assert fleet.view("g", "u1").health == Health.UNKNOWN  # Ready but not listed yet
        job = {
            "metadata": {
                "namespace": "a",
                "name": "cg-x",
                "uid": "k1",
                "labels": {"computegrid.io/job-uid": "u1", "computegrid.io/attempt": "2"},
            },
            "status": {"ready": 1},
        }
        assert fleet.reset_copies("g", [job]) == {"u1"}
        seen = fleet.view("g", "u1", "cg-x")
        assert seen.health == Health.READY and seen.copy is not None
        assert (seen.copy.attempt, seen.copy.phase) == (2, "Running")
        assert fleet.view("g", "u1", "cg-other").copy is None  # a copy must have the name
        assert fleet.update_copy("g", "DELETED", job) == "u1"
        assert fleet.view("g", "u1", "cg-x").copy is None  # definitely absent now
    finally:
        fleet.close()


def test_a_removed_member_counts_as_lost() -> None:
    fleet = Fleet(None, hub_name="h", client_factory=lambda name, spec: FakeMember(), threshold=2)
    try:
        assert fleet.view("g", "u").health == Health.UNKNOWN  # never seen: not lost
        fleet.register("g", SPEC, {})
        fleet.forget("g")
        assert fleet.view("g", "u").health == Health.REMOVED
        fleet.register("g", SPEC, {})  # registered again
        assert fleet.view("g", "u").health == Health.UNKNOWN
    finally:
        fleet.close()


class DeletingMember(FakeMember):
    """Holds two Jobs; one of them cannot be deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = {("team-a", "cg-one"), ("team-a", "cg-stuck")}

    def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        self._check()
        return [{"metadata": {"namespace": ns, "name": n}} for ns, n in sorted(self.jobs)]

    def delete_job(self, namespace: str, name: str) -> bool:
        if name == "cg-stuck":
            raise ConnectionError("reset")
        self.jobs.discard((namespace, name))
        return True


def test_withdraw_deletes_our_jobs_and_names_what_it_could_not() -> None:
    member = DeletingMember()
    fleet = Fleet(None, hub_name="h", client_factory=lambda name, spec: member, threshold=2)
    fleet.register("g", SPEC, {})
    try:
        left = asyncio.run(fleet.withdraw("g", timeout=10))
        assert left == ["team-a/cg-stuck"]
        assert member.jobs == {("team-a", "cg-stuck")}
        member.up = False
        assert asyncio.run(fleet.withdraw("g", timeout=10)) == [
            "(member unreachable: ConnectionError: refused)"
        ]
        assert asyncio.run(fleet.withdraw("never-registered", timeout=10)) == []
    finally:
        fleet.close()


def test_a_late_create_answer_never_replaces_what_the_watch_saw_since() -> None:
    """At 10,000 jobs a create's answer reached the loop after the watch had delivered the
    finished Job; the stale answer replaced it and the ComputeJob stayed Scheduled for ever."""
    fleet = Fleet(None, hub_name="h", client_factory=lambda name, spec: FakeMember())
    state = fleet.register("g", SPEC, {})
    state.watch = Watching()  # type: ignore[assignment]
    state.ready = True

    def job(version: str, status: dict[str, Any], member_uid: str = "k1") -> dict[str, Any]:
        meta = {
            "namespace": "a",
            "name": "cg-x",
            "uid": member_uid,
            "resourceVersion": version,
            "labels": {"computegrid.io/job-uid": "u1"},
        }
        return {"metadata": meta, "status": status}

    created, finished = (
        job("10", {}),
        job("14", {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
    )
    try:
        fleet.reset_copies("g", [])
        fleet.update_copy("g", "MODIFIED", finished)
        fleet.created("g", "u1", copy_of("g", created))
        seen = fleet.view("g", "u1", "cg-x").copy
        assert seen is not None and seen.phase == "Succeeded"
        # a newer answer does replace it, and so does another Job of the same name (recreated)
        fleet.created("g", "u1", copy_of("g", job("15", {"ready": 1})))
        assert (fleet.view("g", "u1").copy or seen).phase == "Running"
        fleet.created("g", "u1", copy_of("g", job("3", {}, member_uid="k2")))
        assert (fleet.view("g", "u1").copy or seen).uid == "k2"
    finally:
        fleet.close()


def test_a_listed_job_cut_to_its_essence_mirrors_the_same() -> None:
    from computegrid.fleet.client import job_essence

    job = {
        "metadata": {
            "namespace": "a",
            "name": "cg-x",
            "uid": "k1",
            "resourceVersion": "7",
            "labels": {"computegrid.io/job-uid": "u1", "computegrid.io/attempt": "2"},
            "annotations": {"computegrid.io/source": "a/x"},
            "managedFields": [{"manager": "kube-controller-manager"}] * 4,
        },
        "spec": {
            "suspend": False,
            "ttlSecondsAfterFinished": 600,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}] * 3}},
        },
        "status": {"ready": 1, "active": 1, "startTime": "2026-11-29T07:00:00Z"},
    }
    cut = job_essence(job)
    assert copy_of("g", cut, "h") == copy_of("g", job, "h")
    assert "template" not in cut["spec"] and "managedFields" not in cut["metadata"]
    assert job["spec"]["template"]  # the caller's body is left whole
