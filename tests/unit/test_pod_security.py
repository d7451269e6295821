"""The pod policy: every rule of the restricted profile and the hub, its levels and exemptions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from computegrid.api import (
    ComputeJob,
    PodPolicy,
    pod_policy_violations,
    restricted_template,
)
from computegrid.api.pod_security import (
    ALL_RULES,
    BASELINE_RULES,
    HUB_RULES,
    RESTRICTED_RULES,
    check_template,
)
from computegrid.scheduling import JobError, to_request
from pod_cases import PodCase, case_template, pod_cases

CASES = pod_cases()
# A baseline rule's case breaks its restricted sibling as well, as in Kubernetes' own checks.
IMPLIES = {
    "capabilities_baseline": {"capabilities_restricted"},
    "hostPathVolumes": {"restrictedVolumes"},
}


def test_every_rule_has_a_case() -> None:
    assert {c.rule for c in CASES} == set(ALL_RULES)


def test_the_restricted_template_passes_every_rule() -> None:
    assert pod_policy_violations(restricted_template("busybox")) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_case_breaks_exactly_its_rule_and_names_the_field(case: PodCase) -> None:
    found = check_template(case.template, "spec.template", ALL_RULES)
    assert {v.rule for v in found} == {case.rule} | IMPLIES.get(case.rule, set())
    assert case.field in {v.path for v in found if v.rule == case.rule}
    line = next(str(v) for v in found if v.rule == case.rule)
    assert line.startswith(f"{case.field}: ") and f"(rule {case.rule})" in line


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_exempting_the_rule_admits_the_case(case: PodCase) -> None:
    policy = PodPolicy.model_validate(
        {
            "namespaces": {
                "trusted": {"exempt": [case.rule, *IMPLIES.get(case.rule, ())]},
            }
        }
    )
    assert policy.violations(case.template, "trusted") == []
    assert policy.violations(case.template, "other") != []


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "Sys_Admin", "ALL"])
def test_capability_spellings_runtimes_accept_are_all_refused(cap: str) -> None:
    raw = {"container": {"securityContext": {"capabilities": {"drop": ["ALL"], "add": [cap]}}}}
    found = pod_policy_violations(case_template(raw), rules=BASELINE_RULES)
    assert len(found) == 1 and repr(cap) in found[0]


def test_net_bind_service_is_the_one_capability_restricted_adds() -> None:
    raw = {
        "container": {
            "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}
        }
    }
    assert pod_policy_violations(case_template(raw)) == []


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "refused"),
    [
        # Pod-level true covers containers that leave it unset ...
        ({"runAsNonRoot": True}, {}, False),
        # ... but not one that says false; and without the pod, each container must say true.
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, True),
        ({}, {"runAsNonRoot": True}, False),
        ({}, {}, True),
    ],
)
def test_run_as_non_root_pod_and_container_levels(
    pod_sc: dict[str, Any], container_sc: dict[str, Any], refused: bool
) -> None:
    template = restricted_template("x")
    template["spec"]["securityContext"] = pod_sc
    template["spec"]["containers"][0]["securityContext"].update(container_sc)
    assert bool(pod_policy_violations(template, rules=["runAsNonRoot"])) is refused


@pytest.mark.parametrize(
    ("pod_type", "container_type", "refused"),
    [
        ("RuntimeDefault", None, False),
        ("Localhost", None, False),
        (None, "RuntimeDefault", False),
        (None, None, True),
        ("RuntimeDefault", "Unconfined", True),
        ("Unconfined", "RuntimeDefault", False),  # restricted holds; baseline refuses the pod's
    ],
)
def test_seccomp_restricted_pod_and_container_levels(
    pod_type: str | None, container_type: str | None, refused: bool
) -> None:
    template = restricted_template("x")
    template["spec"]["securityContext"] = {"seccompProfile": {"type": pod_type}} if pod_type else {}
    if container_type:
        template["spec"]["containers"][0]["securityContext"]["seccompProfile"] = {
            "type": container_type
        }
    found = pod_policy_violations(template, rules=["seccompProfile_restricted", "runAsNonRoot"][:1])
    assert bool(found) is refused


@pytest.mark.parametrize(
    "volume",
    [
        {"name": "a", "configMap": {"name": "c"}},
        {"name": "a", "emptyDir": {}},
        {"name": "a", "projected": {"sources": []}},
        {"name": "a", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "a"},  # no source: the API server defaults it to emptyDir
    ],
)
def test_restricted_volume_types_are_admitted(volume: dict[str, Any]) -> None:
    assert pod_policy_violations(restricted_template("x", volumes=[volume])) == []


def test_allowed_priority_classes_and_the_tenant_service_account() -> None:
    template = restricted_template("x", priorityClassName="batch-low", serviceAccountName="default")
    assert pod_policy_violations(template, priority_classes=["batch-low"]) == []
    (line,) = pod_policy_violations(template)
    assert "'batch-low' is not an allowed priority class (none are configured)" in line


def test_baseline_level_relaxes_only_the_restricted_rules() -> None:
    policy = PodPolicy.model_validate({"namespaces": {"hpc": {"level": "baseline"}}})
    assert policy.for_namespace("hpc").rules() == frozenset(BASELINE_RULES + HUB_RULES)
    assert policy.for_namespace("web").rules() == frozenset(ALL_RULES)
    by_rule = {c.rule: c for c in CASES}
    assert policy.violations(by_rule["runAsUser"].template, "hpc") == []
    assert policy.violations(by_rule["hostPorts"].template, "hpc") != []
    assert policy.violations(by_rule["nodeName"].template, "hpc") != []
    assert set(RESTRICTED_RULES) <= set(ALL_RULES)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"namespaces": {"a": {"exempt": ["hostpath"]}}}, "hostpath: not a rule name"),
        ({"namespaces": {"a": {"level": "privileged"}}}, "baseline"),
        ({"namespaces": {"Team_A": {}}}, "'Team_A' is not a namespace name"),
    ],
)
def test_a_bad_policy_names_its_fault(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PodPolicy.model_validate(raw)


def test_configmap_data_round_trips() -> None:
    policy = PodPolicy.model_validate(
        {
            "default": {"exempt": ["hostPorts"]},
            "namespaces": {"hpc": {"level": "baseline", "exempt": ["procMount", "sysctls"]}},
            "allowedPriorityClasses": ["batch-low", "batch-high"],
        }
    )
    data = policy.to_configmap_data()
    assert data["namespace.hpc.exempt"] == "procMount,sysctls"
    assert PodPolicy.from_configmap_data(data) == policy
    assert PodPolicy.from_configmap_data({}) == PodPolicy()
    with pytest.raises(ValueError, match=r"data\[colour\]: not a pod policy key"):
        PodPolicy.from_configmap_data({"colour": "green"})


def job(template: dict[str, Any], namespace: str = "team-a") -> ComputeJob:
    return ComputeJob.model_validate(
        {
            "metadata": {"name": "j", "namespace": namespace},
            "spec": {"resources": {"cpu": "1"}, "template": template},
        }
    )


def test_the_operator_refuses_with_the_first_violation_and_honours_the_policy() -> None:
    case = next(c for c in CASES if c.rule == "runAsUser")
    with pytest.raises(JobError, match=r"runAsUser: restricted: must not be 0 \(root\)"):
        to_request(job(case.template), "shanghai")
    relaxed = PodPolicy.model_validate({"namespaces": {"team-a": {"level": "baseline"}}})
    assert to_request(job(case.template), "shanghai", pod_policy=relaxed).parallelism == 1


@pytest.mark.parametrize(
    ("raw", "finding"),
    [
        (
            {
                "container": {
                    "securityContext": {"capabilities": {"drop": ["ALL"], "add": "SYS_ADMIN"}}
                }
            },
            "spec.template.spec.containers[0].securityContext.capabilities.add: must be a list",
        ),
        ({"pod": {"hostNetwork": "true"}}, "spec.template.spec.hostNetwork: must be a boolean"),
        (
            {"pod": {"securityContext": {"runAsUser": False}}},
            "spec.template.spec.securityContext.runAsUser: must be an integer",
        ),
        ({"pod": {"volumes": "hostPath"}}, "spec.template.spec.volumes: must be a list"),
        (
            {"container": {"securityContext": None, "ports": {"hostPort": 22}}},
            "ports: must be a list",
        ),
    ],
)
def test_a_wrong_type_is_refused_not_read_as_absent(raw: dict[str, Any], finding: str) -> None:
    found = pod_policy_violations(case_template(raw))
    assert any(line.startswith(finding) or finding in line for line in found), found
