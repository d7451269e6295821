"""Proof that the test bed is a real fleet, independent of the operator.

Why: every other integration test trusts these facts. The hub's API server enforces the
ComputeJob schema and prints its columns; a member really schedules and finishes (or fails)
a batch/v1 Job through kube-scheduler and kwok; its nodes carry the fleet data's capacity
and labels; the hub holds a working kubeconfig Secret per member; and a member can be taken
down and brought back for the chaos tests.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity as _parse_quantity
from testbed_jobs import batch_job, job_pods, wait_job

from computegrid import testbed
from computegrid.api import restricted_template
from computegrid.fleet_data import load_national_fleet, node_labels
from computegrid.testbed import kube

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
GROUP, VERSION, PLURAL = "computegrid.io", "v1alpha1", "computejobs"

parse_quantity: Any = _parse_quantity  # untyped in the client

needs_crds = pytest.mark.skipif(not sorted(CRDS.glob("*.yaml")), reason="crds/ not generated yet")


def compute_job(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "computeType": "general",
        "resources": {"cpu": "2", "memory": "4Gi"},
        "template": restricted_template("busybox"),
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ComputeJob",
        "metadata": {"name": name},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def create_cj(hub_api: Any, namespace: str, body: dict[str, Any], strict: bool = True) -> Any:
    custom: Any = client.CustomObjectsApi(hub_api)
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict" if strict else None
    )


def kubectl(fleet: testbed.FleetInfo, kubeconfig: str, *args: str) -> str:
    """The BUILT kubectl (never the one on the machine's PATH)."""
    exe = Path(fleet.bin_dir) / "kubectl"
    out = subprocess.run(
        [str(exe), "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout


@needs_crds
def test_crds_are_installed_and_established(hub_api: Any) -> None:
    ext: Any = client.ApiextensionsV1Api(hub_api)
    crds = {c.metadata.name: c for c in ext.list_custom_resource_definition().items}
    expected = {doc["metadata"]["name"] for doc in testbed.load_crds(CRDS)}
    assert expected <= set(crds)
    for name in expected:
        conditions = {c.type: c.status for c in crds[name].status.conditions}
        assert conditions.get("Established") == "True", name


@needs_crds
def test_valid_compute_job_is_accepted(hub_api: Any, namespace: str) -> None:
    created = create_cj(hub_api, namespace, compute_job("fine"))
    assert created["spec"]["computeType"] == "general"


@needs_crds
@pytest.mark.parametrize(
    ("case", "body", "message"),
    [
        ("bad-enum", compute_job("bad-enum", computeType="quantum"), "computeType"),
        ("no-template", compute_job("no-template", template=None), "template"),
        ("no-resources", compute_job("no-resources", resources=None), "resources"),
        ("unknown-field", compute_job("unknown-field", colour="green"), "colour"),
        ("zero-parallelism", compute_job("zero", parallelism=0), "parallelism"),
    ],
)
def test_schema_violations_are_rejected(
    hub_api: Any, namespace: str, case: str, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as caught:
        create_cj(hub_api, namespace, body)
    # 422 Invalid from the schema; 400 BadRequest from strict decoding of an unknown field.
    assert caught.value.status in (400, 422), (case, caught.value.body)
    assert message in str(caught.value.body), (case, caught.value.body)


@needs_crds
def test_kubectl_get_computejobs_shows_printer_columns(
    fleet: testbed.FleetInfo, hub_api: Any, namespace: str
) -> None:
    create_cj(hub_api, namespace, compute_job("printed"))
    got = kubectl(fleet, fleet.hub.kubeconfig, "-n", namespace, "get", "computejobs")
    header, row = got.splitlines()[:2]
    assert header.split() == [
        "NAME", "PHASE", "CLUSTER", "HUB", "LATENCY-MS", "START", "PATH", "AGE"
    ]  # fmt: skip
    assert row.split()[0] == "printed"
    wide = kubectl(fleet, fleet.hub.kubeconfig, "-n", namespace, "get", "computejobs", "-o", "wide")
    assert {"CARBON", "SCORE"} <= set(wide.splitlines()[0].split())


@needs_crds
def test_kubectl_short_name_resolves_to_computejobs(
    fleet: testbed.FleetInfo, hub_api: Any, namespace: str
) -> None:
    # `cj` would be batch/v1 CronJob's (built-in short names win in kubectl), hence `cgj`.
    create_cj(hub_api, namespace, compute_job("short"))
    got = kubectl(fleet, fleet.hub.kubeconfig, "-n", namespace, "get", "cgj", "-o", "name")
    assert got.split() == ["computejob.computegrid.io/short"]


def test_job_runs_to_succeeded_through_scheduler_and_kwok(
    fleet: testbed.FleetInfo, member_apis: dict[str, Any], namespace: str
) -> None:
    member = fleet.members[0]
    api = member_apis[member.name]
    batch: Any = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, body=batch_job("ok", 2))
    job = wait_job(api, namespace, "ok", "Complete")
    assert job.status.succeeded == 1
    pods = job_pods(api, namespace, "ok")
    assert [p.status.phase for p in pods] == ["Succeeded"]
    assert pods[0].spec.node_name in member.nodes  # placed by kube-scheduler on a kwok node
    started = pods[0].status.container_statuses[0].state.terminated
    assert started.exit_code == 0


def test_failing_job_goes_failed(
    fleet: testbed.FleetInfo, member_apis: dict[str, Any], namespace: str
) -> None:
    api = member_apis[fleet.members[1].name]
    batch: Any = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, body=batch_job("bad", 1, fail=True))
    job = wait_job(api, namespace, "bad", "Failed")
    assert job.status.failed == 1
    pods = job_pods(api, namespace, "bad")
    assert [p.status.phase for p in pods] == ["Failed"]
    assert pods[0].status.container_statuses[0].state.terminated.exit_code == 1


def test_nodes_match_the_fleet_data(fleet: testbed.FleetInfo, member_apis: dict[str, Any]) -> None:
    clusters = {c.name: c for c in load_national_fleet().clusters}
    for member in fleet.members:
        data = clusters[member.name]
        specs = {spec.name: spec for spec in data.nodes}
        core: Any = client.CoreV1Api(member_apis[member.name])
        nodes = {n.metadata.name: n for n in core.list_node().items}
        assert sorted(nodes) == member.nodes
        for name, node in nodes.items():
            spec = specs[name]
            alloc = node.status.allocatable
            assert parse_quantity(alloc["cpu"]) == spec.cpu
            assert parse_quantity(alloc["memory"]) == spec.memory_gi * 2**30
            assert parse_quantity(alloc.get("nvidia.com/gpu", "0")) == spec.gpu
            labels = node.metadata.labels
            assert node_labels(data, spec).items() <= labels.items()
            ready = {c.type: c.status for c in node.status.conditions}["Ready"]
            assert ready == "True"


def test_hub_has_a_working_kubeconfig_secret_per_member(
    fleet: testbed.FleetInfo, hub_api: Any
) -> None:
    core: Any = client.CoreV1Api(hub_api)
    secrets = core.list_namespaced_secret(fleet.secret_namespace).items
    by_name = {s.metadata.name: s for s in secrets}
    assert {m.name for m in fleet.members} <= set(by_name)
    for member in fleet.members:
        text = base64.b64decode(by_name[member.name].data["kubeconfig"]).decode()
        assert "127.0.0.1" in text and "-data:" in text  # self-contained, loopback
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
            handle.write(text)
            handle.flush()
            api = testbed.api_client(Path(handle.name))
            try:
                assert kube.server_version(api) == fleet.kubernetes_version
            finally:
                api.close()


def test_status_reports_every_cluster_ready(fleet: testbed.FleetInfo) -> None:
    rows = testbed.status(fleet.name, fleet.workdir)
    assert [r.cluster.name for r in rows] == [c.name for c in fleet.clusters]
    assert all(r.ready and r.version == fleet.kubernetes_version for r in rows)
    assert all(r.healthy for r in rows), [c.to_dict() for r in rows for c in r.failing]


def test_stopping_a_member_makes_it_unreachable_and_starting_restores_it(
    fleet: testbed.FleetInfo, member_apis: dict[str, Any]
) -> None:
    member = fleet.members[-1]
    api = member_apis[member.name]
    assert kube.is_ready(api)
    testbed.stop_member(member.name, fleet.name, fleet.workdir)
    try:
        assert not kube.is_ready(api, timeout=2)
        with pytest.raises((ApiException, *kube.TRANSIENT)):  # connection refused
            client.CoreV1Api(api).list_node(_request_timeout=2)
        others = [m for m in fleet.members if m is not member]
        assert all(kube.is_ready(member_apis[m.name]) for m in others)
    finally:
        testbed.start_member(member.name, fleet.name, fleet.workdir)
    assert kube.is_ready(api)
    core: Any = client.CoreV1Api(api)
    names = sorted(n.metadata.name for n in core.list_node().items)
    assert names == member.nodes  # etcd kept its data across the restart
    # and the restarted scheduler and kwok-controller run Jobs again
    core.create_namespace(body={"metadata": {"name": "after-restart"}})
    try:
        batch: Any = client.BatchV1Api(api)
        batch.create_namespaced_job("after-restart", body=batch_job("again", 1))
        wait_job(api, "after-restart", "again", "Complete")
    finally:
        core.delete_namespace("after-restart")
