"""The pure parts of dispatch: the member Job spec, its name, and status mirroring."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from computegrid.api import ComputeJob, Phase, restricted_template
from computegrid.dispatch import build_job_spec, create_or_adopt, remote_name
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
    assert meta["namespace"] == "team-a"  # the tenant's namespace on the member
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
    """A JobClient double: one namespace, Jobs by name."""

    name = "m"

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def list_jobs(self, label_selector: str) -> list[dict[str, Any]]:
        return list(self.jobs.values())

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get(name)

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        self.jobs[name] = {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.jobs)}"}}
        return self.jobs[name]

    def delete_job(self, namespace: str, name: str) -> bool:
        return self.jobs.pop(name, None) is not None

    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None:
        pass


def test_create_then_adopt() -> None:
    member = FakeMember()
    body = build_job_spec(cj(), "m")
    first = create_or_adopt(member, body, {})
    again = create_or_adopt(member, body, {})  # a re-run after a crash: no second Job
    assert (first.adopted, again.adopted) == (False, True)
    assert first.uid == again.uid and len(member.jobs) == 1


def test_refuses_to_adopt_a_foreign_job() -> None:
    member = FakeMember()
    body = build_job_spec(cj(), "m")
    member.jobs[body["metadata"]["name"]] = {"metadata": {"labels": {}}}
    with pytest.raises(PermissionError):
        create_or_adopt(member, body, {})
