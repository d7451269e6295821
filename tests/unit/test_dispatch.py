"""The pure parts of dispatch: the member Job spec, its name, and status mirroring."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from computegrid.api import ComputeJob, Phase, restricted_template
from computegrid.dispatch import (
    TenantNamespace,
    build_job_spec,
    create_or_adopt,
    remote_name,
    tenant_for,
)
from computegrid.lifecycle import mirror


def cj(**spec: Any) -> ComputeJob:
    body = {
        "metadata": {
            "name": "llm-finetune",
            "namespace": "team-a",
            "uid": "u-1",
            "annotations": {},
        },
        "spec": {
            "computeType": "intelligent",
            "resources": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"},
            "parallelism": 2,
            "template": restricted_template("x"),
            **spec,
        },
    }
    return ComputeJob.model_validate(body)


def test_name_is_deterministic_and_short() -> None:
    a = remote_name("team-a", "llm-finetune", "u-1")
    assert a == remote_name("team-a", "llm-finetune", "u-1")
    assert a != remote_name("team-a", "llm-finetune", "u-2")  # a re-created job gets a new one
    assert a.startswith("cg-llm-finetune-")
    assert len(remote_name("ns", "x" * 253, "u")) <= 52


def test_job_spec() -> None:
    job = build_job_spec(cj(), "gansu-qingyang", origin_cluster="hub-1")
    meta, spec = job["metadata"], job["spec"]
    assert meta["namespace"] == "hub-1-team-a"  # the namespace hub-1 owns for team-a
    assert meta["labels"]["computegrid.io/tenant"] == "team-a"
    assert meta["labels"]["computegrid.io/job-uid"] == "u-1"
    assert meta["labels"]["computegrid.io/origin-cluster"] == "hub-1"
    assert (spec["parallelism"], spec["completions"]) == (2, 2)  # completions default
    pod = spec["template"]
    assert pod["metadata"]["labels"]["computegrid.io/job-uid"] == "u-1"
    assert pod["spec"]["nodeSelector"] == {"computegrid.io/compute-type": "intelligent"}
    assert pod["spec"]["restartPolicy"] == "Never"  # a Job refuses Always
    assert pod["spec"]["automountServiceAccountToken"] is False  # no member API token
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # the template's own kept
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"}
    assert resources["limits"] == {"nvidia.com/gpu": "4"}  # extended resources need limits


def test_job_spec_does_not_touch_the_input() -> None:
    job = cj()
    build_job_spec(job, "x")
    assert "resources" not in job.spec.template["spec"]["containers"][0]


def test_job_spec_refuses_a_template_without_containers() -> None:
    with pytest.raises(ValueError, match="containers"):
        build_job_spec(cj(template={"spec": {}}), "x")


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ({}, Phase.SCHEDULED),
        ({"active": 1, "startTime": "t"}, Phase.SCHEDULED),  # pods made, none ran yet
        ({"active": 1, "ready": 1, "startTime": "t"}, Phase.RUNNING),
        ({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}, Phase.SUCCEEDED),
        ({"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}, Phase.FAILED),
        ({"conditions": [{"type": "Failed", "status": "False"}], "ready": 1}, Phase.RUNNING),
    ],
)
def test_mirror_phase(status: dict[str, Any], phase: Phase) -> None:
    assert mirror({"status": status}).phase == phase


class FakeMember:
    """A JobClient double: Jobs by name; namespaces ensured are recorded."""

    name = "m"

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.namespaces: list[str] = []
        self.lost_namespace = False  # the first create answers 404, as after a deletion

    def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        return list(self.jobs.values())

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get(name)

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if self.lost_namespace:
            self.lost_namespace = False
            raise ApiException(status=404, reason="NotFound")
        if name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        self.jobs[name] = {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.jobs)}"}}
        return self.jobs[name]

    def delete_job(self, namespace: str, name: str) -> bool:
        return self.jobs.pop(name, None) is not None

    def ensure_namespace(self, tenant: TenantNamespace) -> None:
        self.namespaces.append(tenant.name)

    def forget_namespace(self, name: str) -> None:
        self.namespaces.append(f"forget {name}")


TENANT = tenant_for("team-a", "hub", None)


def test_create_then_adopt() -> None:
    member = FakeMember()
    body = build_job_spec(cj(), "m")
    first = create_or_adopt(member, body, TENANT)
    again = create_or_adopt(member, body, TENANT)  # a re-run after a crash: no second Job
    assert (first.adopted, again.adopted) == (False, True)
    assert first.uid == again.uid and len(member.jobs) == 1
    assert first.namespace == "hub-team-a" and member.namespaces[0] == "hub-team-a"


def test_a_namespace_deleted_since_it_was_ensured_is_ensured_again() -> None:
    member = FakeMember()
    member.lost_namespace = True
    remote = create_or_adopt(member, build_job_spec(cj(), "m"), TENANT)
    assert not remote.adopted
    assert member.namespaces == ["hub-team-a", "forget hub-team-a", "hub-team-a"]


def test_refuses_a_job_outside_the_tenant_namespace() -> None:
    body = build_job_spec(cj(), "m", origin_cluster="other-hub")
    with pytest.raises(ValueError, match="not the tenant's hub-team-a"):
        create_or_adopt(FakeMember(), body, TENANT)


def test_refuses_to_adopt_a_foreign_job() -> None:
    member = FakeMember()
    body = build_job_spec(cj(), "m")
    member.jobs[body["metadata"]["name"]] = {"metadata": {"labels": {}}}
    with pytest.raises(PermissionError):
        create_or_adopt(member, body, TENANT)
