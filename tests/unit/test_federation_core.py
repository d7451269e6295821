"""Federation (issue 10), the pure parts: the child ComputeJob, loops, the second kind of
copy, a child hub's clusters in the parent's view."""

from __future__ import annotations

from typing import Any

import pytest

from computegrid.api import (
    ANN_PATH,
    ComputeJob,
    ComputeType,
    LatencySensitivity,
    MemberClusterSpec,
    Phase,
)
from computegrid.dispatch import remote_name, tenant_namespace
from computegrid.dispatch.federation import (
    MAX_DEPTH,
    build_child_computejob,
    route_problem,
    split_cluster,
)
from computegrid.fleet import build_snapshot, ready_status
from computegrid.fleet.federation import child_snapshots, hub_status, hub_summary
from computegrid.fleet.live import snapshot_from_status
from computegrid.fleet_data import load_national_fleet
from computegrid.fleet_data.national import load_latency_model
from computegrid.lifecycle import copy_of, machine
from computegrid.scheduling import Decision, FleetState, JobRequest, Scheduler

NOW = "2026-11-29T04:00:00Z"


def parent_job(path: str | None = None) -> ComputeJob:
    annotations = {
        "computegrid.io/origin": "shanghai",
        "computegrid.io/latency-sensitivity": "high",
    }
    if path is not None:
        annotations[ANN_PATH] = path
    return ComputeJob.model_validate(
        {
            "metadata": {
                "name": "render",
                "namespace": "team-a",
                "uid": "u-1",
                "annotations": {**annotations, "other.io/x": "dropped"},
            },
            "spec": {
                "resources": {"cpu": "1"},
                "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
            },
        }
    )


def test_the_child_computejob_is_named_labelled_and_routed_like_a_member_job() -> None:
    body = build_child_computejob(
        parent_job(), origin_cluster="national", attempt=2, pinned_cluster="yangtze-wujiang"
    )
    meta = body["metadata"]
    assert body["kind"] == "ComputeJob"
    assert meta["name"] == remote_name("team-a", "render", "u-1")
    assert meta["namespace"] == tenant_namespace("team-a", "national") == "national-team-a"
    assert meta["labels"]["computegrid.io/origin-cluster"] == "national"
    assert meta["labels"]["computegrid.io/job-uid"] == "u-1"
    assert meta["labels"]["computegrid.io/attempt"] == "2"
    assert meta["annotations"][ANN_PATH] == "national"
    assert meta["annotations"]["computegrid.io/origin"] == "shanghai"
    assert "other.io/x" not in meta["annotations"]
    assert body["spec"]["placement"]["pinnedCluster"] == "yangtze-wujiang"
    ComputeJob.model_validate(body)  # a valid ComputeJob for the child's API


def test_autonomous_leaves_the_choice_to_the_child_and_the_path_grows() -> None:
    body = build_child_computejob(
        parent_job(path="national"), origin_cluster="yangtze", attempt=1, pinned_cluster=None
    )
    assert "pinnedCluster" not in body["spec"]["placement"]
    assert body["metadata"]["annotations"][ANN_PATH] == "national,yangtze"


@pytest.mark.parametrize(
    ("path", "hub", "refused"),
    [
        ("", "national", None),
        ("national", "yangtze", None),
        ("national,yangtze", "national", "already passed through hub national"),
        (",".join(f"h{i}" for i in range(MAX_DEPTH)), "other", f"at most {MAX_DEPTH}"),
    ],
)
def test_a_hub_refuses_a_job_that_would_loop_or_go_too_deep(
    path: str, hub: str, refused: str | None
) -> None:
    problem = route_problem({ANN_PATH: path}, hub)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem and ANN_PATH in problem


def test_split_cluster() -> None:
    assert split_cluster("yangtze/yangtze-wujiang") == ("yangtze", "yangtze-wujiang")
    assert split_cluster("gansu-qingyang") == ("gansu-qingyang", None)


def child_cj(phase: str | None, path: list[str] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "kind": "ComputeJob",
        "metadata": {
            "name": "cg-render-x",
            "namespace": "team-a",
            "uid": "child-uid",
            "labels": {"computegrid.io/job-uid": "u-1", "computegrid.io/attempt": "3"},
            "annotations": {"computegrid.io/source": "team-a/render"},
        },
        "status": {"phase": phase, "path": path or [], "message": "m", **status},
    }


@pytest.mark.parametrize(
    ("phase", "seen", "finished"),
    [
        (None, Phase.SCHEDULED, False),
        ("Pending", Phase.SCHEDULED, False),
        ("Deferred", Phase.SCHEDULED, False),
        ("Scheduled", Phase.SCHEDULED, False),
        ("Running", Phase.RUNNING, False),
        ("Succeeded", Phase.SUCCEEDED, True),
        ("Failed", Phase.FAILED, True),
    ],
)
def test_a_child_computejob_is_a_copy_the_machine_reads(
    phase: str | None, seen: Phase, finished: bool
) -> None:
    copy = copy_of("yangtze", child_cj(phase), "national")
    assert (copy.phase, copy.finished) == (seen.value, finished)
    assert copy.attempt == 3 and copy.source == "team-a/render" and copy.ttl
    assert copy.path == ("national", "yangtze")  # the child has not placed it yet


def test_status_mirrors_the_childs_path_up() -> None:
    child = child_cj("Running", ["yangtze", "yangtze-wujiang"], active=1, startTime=NOW)
    copy = copy_of("yangtze", child, "national")
    status = {"phase": "Scheduled", "remote": {"cluster": "yangtze", "name": "cg-render-x"}}
    step = machine.mirror_step(status, copy, NOW, 1, {})
    assert step.patch["path"] == ["national", "yangtze", "yangtze-wujiang"]
    assert step.patch["phase"] == "Running"
    assert step.patch["remote"]["uid"] == "child-uid"


def test_a_plain_member_job_gets_the_two_hop_path() -> None:
    job = {"kind": "Job", "metadata": {"name": "j", "labels": {}}, "status": {}}
    assert copy_of("gansu-qingyang", job, "hub").path == ("hub", "gansu-qingyang")
    assert copy_of("gansu-qingyang", job).path == ()


SPEC = {
    "hub": "gansu",
    "region": "west",
    "location": "qingyang",
    "kubeconfigSecretRef": {"name": "x"},
}


def member_cluster(name: str, cpu: str, *, kind: str = "Cluster") -> dict[str, Any]:
    node = {
        "metadata": {
            "name": "n1",
            "labels": {
                "computegrid.io/compute-type": "general",
                "computegrid.io/carbon-intensity": "300",
                "computegrid.io/renewable-share": "0.5",
                "computegrid.io/power-price": "0.4",
            },
        },
        "status": {
            "allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    spec = MemberClusterSpec.model_validate(SPEC)
    snap = build_snapshot(name, spec, [node], [])
    return {
        "metadata": {"name": name, "labels": {"tier": "a"}},
        "spec": {**SPEC, "type": kind},
        "status": ready_status(snap, None, NOW),
    }


def test_a_hub_member_expands_into_its_clusters() -> None:
    bodies = [
        member_cluster("gansu-qingyang", "16"),
        member_cluster("gansu-b", "8"),
        member_cluster("deeper-hub", "4", kind="Hub"),
    ]
    children, problems = child_snapshots("west", bodies)
    assert problems == []
    assert [c.name for c in children] == ["west/gansu-b", "west/gansu-qingyang"]
    assert all(c.location == "qingyang" and c.ready for c in children)
    assert children[0].labels == {"tier": "a"}
    assert sum(n.allocatable["cpu"] for n in children[1].nodes) == 16
    spec = MemberClusterSpec.model_validate({**SPEC, "type": "Hub"})
    summary = hub_summary("west", spec, {}, children)
    assert sum(n.allocatable["cpu"] for n in summary.nodes) == 24
    body = hub_status(summary, children, None, NOW)
    assert body["conditions"][0]["message"] == "hub with 2 clusters, 2 ready"
    assert body["power"]["carbonIntensity"] == 300


def _status_body(snap: Any) -> dict[str, Any]:
    """A MemberCluster as a child hub's operator would have written it for ``snap``."""
    return {
        "metadata": {"name": snap.name, "labels": {}},
        "spec": {
            "hub": snap.hub,
            "region": snap.region.value,
            "location": snap.location,
            "kubeconfigSecretRef": {"name": snap.name},
        },
        "status": ready_status(snap, None, NOW),
    }


@pytest.mark.parametrize("sensitivity", list(LatencySensitivity))
@pytest.mark.parametrize("origin", ["shanghai", "beijing", "guangzhou", "xian", "chengdu"])
def test_pinned_places_like_a_flat_fleet_of_the_same_clusters(
    sensitivity: LatencySensitivity, origin: str
) -> None:
    """The national fleet split under two regional hubs decides as the same ten clusters read
    flat from their MemberCluster statuses: the parent judges the children one by one."""
    bodies = [_status_body(s) for s in load_national_fleet().snapshots()]
    flat = [snapshot_from_status(b) for b in bodies]
    east = [b for b in bodies if b["spec"]["region"] != "west"]
    west = [b for b in bodies if b["spec"]["region"] == "west"]
    federated = child_snapshots("east", east)[0] + child_snapshots("west", west)[0]
    latency = load_latency_model()
    for kind, resources in (
        (ComputeType.GENERAL, {"cpu": 8.0, "memory": 16 * 2**30}),
        (ComputeType.INTELLIGENT, {"cpu": 8.0, "memory": 32 * 2**30, "nvidia.com/gpu": 2.0}),
    ):
        request = JobRequest(
            name="team-a/sample",
            origin=origin,
            pod_resources=resources,
            compute_type=kind,
            sensitivity=sensitivity,
        )
        one = Scheduler().schedule(request, FleetState(flat, latency))
        two = Scheduler().schedule(request, FleetState(federated, latency))
        assert isinstance(one, Decision) == isinstance(two, Decision)
        if isinstance(one, Decision) and isinstance(two, Decision):
            assert split_cluster(two.cluster.name)[1] == one.cluster.name
