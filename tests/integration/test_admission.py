"""The pod policy at ``kubectl create`` on the test bed's hub, and the tenant and member roles.

The chart is installed on the hub (its ValidatingAdmissionPolicy, binding and policy
ConfigMap); every case of tests/data/bad/pod-security.yaml, the list the operator's unit
tests also run, must then be refused by the real API server with the rule's message naming
the field. A namespace relaxed to ``baseline`` admits the restricted-only cases and still
refuses the baseline ones; Kopf-style metadata patches of an admitted job always pass.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_fixtures import Admission
from test_chart import kubectl

from computegrid import testbed
from computegrid.api import restricted_template
from computegrid.api.pod_security import RESTRICTED_RULES
from computegrid.dispatch import tenant_for
from computegrid.fleet.rest import ApiException as RestError
from pod_cases import PodCase, pod_cases

pytest_plugins = ["admission_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
CASES = pod_cases()
MEMBER_SA = "system:serviceaccount:computegrid-system:computegrid-hub"


def _with(**pod: Any) -> dict[str, Any]:
    return restricted_template("busybox", restartPolicy="Never", **pod)


def message_path(field: str) -> str:
    """The path as the policy words it: any index is ``[*]``, an annotation key a pattern."""
    path = re.sub(r"\[\d+\]", "[*]", field)
    return re.sub(
        r"\[container\.apparmor\.security\.beta\.kubernetes\.io/[^\]]*\]",
        "[container.apparmor.security.beta.kubernetes.io/*]",
        path,
    )


def names_the_rule(error: str, case: PodCase) -> bool:
    """kubectl's error carries a message ``<path>: <level>: ... (rule <rule>)`` for the case."""
    wanted = message_path(case.field)
    for match in re.finditer(r"(spec\.template\.\S+?): (\w+): .*?\(rule (\w+)\)", error):
        path, _, rule = match.groups()
        if rule == case.rule and wanted.startswith(path):
            return True
    return False


def test_a_restricted_job_is_admitted(admission: Admission) -> None:
    assert admission.create("fine", _with()) == ""
    assert admission.create("pc", _with(priorityClassName="batch-low")) == ""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_rule_is_refused_at_create_naming_the_field(
    admission: Admission, case: PodCase
) -> None:
    error = admission.create(f"bad-{uuid.uuid4().hex[:8]}", case.template)
    assert error, f"{case.id} was admitted"
    assert "denied request" in error
    assert names_the_rule(error, case), error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_baseline_namespace_admits_only_restricted_cases(
    admission: Admission, case: PodCase
) -> None:
    error = admission.create(f"b-{uuid.uuid4().hex[:8]}", case.template, admission.trusted)
    if case.rule in RESTRICTED_RULES:
        assert error == ""
    else:
        assert names_the_rule(error, case), error


def test_a_template_without_containers_is_refused_by_the_crd(admission: Admission) -> None:
    error = admission.create("empty", {"spec": {"containers": []}})
    assert "spec.template.spec.containers" in error and "at least 1 items" in error


def test_metadata_patches_pass_and_spec_changes_are_checked(admission: Admission) -> None:
    hub, ns = admission.hub, admission.trusted
    assert admission.create("rooty", _with(securityContext={"runAsUser": 0}), ns) == ""
    # The platform team tightens the trusted namespace back to restricted ...
    configmap = f"{admission.release}-pod-policy"
    kubectl(hub, "-n", admission.namespace, "patch", "configmap", configmap, "--type=json",
            "-p", json.dumps([{"op": "remove", "path": f"/data/namespace.{ns}.level"},
                              {"op": "remove", "path": f"/data/namespace.{ns}.exempt"}]))  # fmt: skip
    deadline = time.monotonic() + 60
    while not admission.create(
        f"r-{uuid.uuid4().hex[:6]}", _with(securityContext={"runAsUser": 0}), ns
    ):
        assert time.monotonic() < deadline, "the new params never took effect"
        time.sleep(1)
    # ... Kopf's finalizer and annotation patches of the admitted job still go through ...
    kubectl(hub, "-n", ns, "patch", "computejob", "rooty", "--type=merge", "-p",
            json.dumps({"metadata": {"finalizers": ["kopf.zalando.org/KopfFinalizerMarker"],
                                     "annotations": {"kopf.zalando.org/last": "x"}}}))  # fmt: skip
    kubectl(hub, "-n", ns, "patch", "computejob", "rooty", "--type=json", "-p",
            json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]))  # fmt: skip
    # ... but a change of its spec is checked against today's policy.
    done = kubectl(hub, "-n", ns, "patch", "computejob", "rooty", "--type=merge", "-p",
                   json.dumps({"spec": {"parallelism": 2}}), check=False)  # fmt: skip
    assert "patched" not in done
    kubectl(hub, "-n", ns, "delete", "computejob", "rooty", "--wait=true", "--timeout=30s")


# Tenant roles on the hub -------------------------------------------------------------------


def can_i(kubeconfig: Path, user: str, *what: str) -> bool:
    done = subprocess.run(
        [str(testbed.bin_dir() / "kubectl"), "auth", "can-i", f"--as={user}", *what],
        capture_output=True, text=True, timeout=60, check=False,
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {what}: {done.stdout}{done.stderr}"
    return answer == "yes"


TENANT_MATRIX = [
    # (built-in role bound in the tenant namespace, verb, resource, allowed)
    ("edit", "create", "computejobs.computegrid.io", True),
    ("edit", "delete", "computejobs.computegrid.io", True),
    ("edit", "patch", "computejobs.computegrid.io", True),
    ("edit", "patch", "computejobs.computegrid.io/status", False),
    ("edit", "create", "memberclusters.computegrid.io", False),
    ("view", "get", "computejobs.computegrid.io", True),
    ("view", "list", "computejobs.computegrid.io", True),
    ("view", "create", "computejobs.computegrid.io", False),
    ("view", "delete", "computejobs.computegrid.io", False),
]


@pytest.fixture(scope="module")
def tenant_users(admission: Admission) -> dict[str, str]:
    users = {}
    for role in ("edit", "view"):
        user = f"{role}-user-{uuid.uuid4().hex[:4]}"
        kubectl(admission.hub, "-n", admission.tenant, "create", "rolebinding", user,
                f"--clusterrole={role}", f"--user={user}")  # fmt: skip
        users[role] = user
    # The clusterrole-aggregation controller folds <release>-tenant-edit/view in asynchronously.
    deadline = time.monotonic() + 60
    while not can_i(admission.hub, users["view"], "list", "computejobs.computegrid.io",
                    "-n", admission.tenant):  # fmt: skip
        assert time.monotonic() < deadline, "the tenant view role was never aggregated into view"
        time.sleep(1)
    return users


@pytest.mark.parametrize(("role", "verb", "resource", "allowed"), TENANT_MATRIX)
def test_tenant_roles(
    admission: Admission, tenant_users: dict[str, str], role: str, verb: str, resource: str,
    allowed: bool,
) -> None:  # fmt: skip
    resource, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    answer = can_i(
        admission.hub, tenant_users[role], verb, resource, *extra, "-n", admission.tenant
    )
    assert answer is allowed
    # ... and nothing in a namespace the user was not given.
    assert not can_i(
        admission.hub, tenant_users[role], verb, resource, *extra, "-n", admission.trusted
    )


# The member-side role ----------------------------------------------------------------------

MEMBER_MAY = [
    ("list", "nodes"),
    ("watch", "nodes"),
    ("list", "pods", "-A"),
    ("create", "namespaces"),
    ("get", "namespaces"),
    ("list", "jobs.batch", "-A"),
    ("create", "jobs.batch", "-n", "team-a"),
    ("delete", "jobs.batch", "-n", "team-a"),
    ("create", "resourcequotas", "-n", "team-a"),
    ("patch", "resourcequotas", "-n", "team-a"),
    ("create", "limitranges", "-n", "team-a"),
    ("patch", "limitranges", "-n", "team-a"),
]
MEMBER_MUST_NOT = [
    ("get", "secrets", "-n", "team-a"),
    ("list", "secrets", "-A"),
    ("get", "configmaps", "-n", "kube-system"),
    ("create", "pods", "-n", "team-a"),
    ("create", "pods", "--subresource=exec", "-n", "team-a"),
    ("delete", "namespaces"),
    ("patch", "namespaces"),
    ("update", "namespaces"),
    ("delete", "resourcequotas", "-n", "team-a"),
    ("delete", "limitranges", "-n", "team-a"),
    ("create", "serviceaccounts", "-n", "team-a"),
    ("create", "serviceaccounts", "--subresource=token", "-n", "team-a"),
    ("create", "rolebindings", "-n", "team-a"),
    ("bind", "clusterroles"),
    ("patch", "nodes"),
    ("delete", "nodes"),
    ("update", "jobs.batch", "--subresource=status", "-n", "team-a"),
]


@pytest.fixture(scope="module")
def member(fleet: testbed.FleetInfo) -> Iterator[Path]:
    kubeconfig = Path(fleet.members[0].kubeconfig)
    kubectl(kubeconfig, "apply", "-f", str(ROOT / "deploy" / "member-rbac.yaml"))
    yield kubeconfig
    kubectl(kubeconfig, "delete", "-f", str(ROOT / "deploy" / "member-rbac.yaml"),
            "--ignore-not-found", "--wait=false")  # fmt: skip


@pytest.mark.parametrize("what", MEMBER_MAY, ids=" ".join)
def test_member_role_may(member: Path, what: tuple[str, ...]) -> None:
    assert can_i(member, MEMBER_SA, *what)


@pytest.mark.parametrize("what", MEMBER_MUST_NOT, ids=" ".join)
def test_member_role_may_not(member: Path, what: tuple[str, ...]) -> None:
    assert not can_i(member, MEMBER_SA, *what)


def test_the_member_token_works_through_the_strict_reader(member: Path) -> None:
    """The Secret's token + the member's CA make a kubeconfig the strict reader accepts."""
    from computegrid.fleet.client import KubeMemberClient

    deadline = time.monotonic() + 60
    token = ""
    while not token:
        token = kubectl(member, "-n", "computegrid-system", "get", "secret",
                        "computegrid-hub-token", "-o", "jsonpath={.data.token}")  # fmt: skip
        assert token or time.monotonic() < deadline, "the token controller never filled it"
        time.sleep(0 if token else 1)
    import base64

    source = yaml.safe_load(member.read_text(encoding="utf-8"))
    cluster = source["clusters"][0]["cluster"]
    ca_path = cluster.get("certificate-authority")
    ca = (
        cluster.get("certificate-authority-data")
        or base64.b64encode((member.parent / ca_path).read_bytes() if ca_path else b"").decode()
    )
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "m",
        "clusters": [{"name": "m", "cluster": {"server": cluster["server"],
                                                "certificate-authority-data": ca}}],
        "users": [{"name": "hub", "user": {"token": base64.b64decode(token).decode()}}],
        "contexts": [{"name": "m", "context": {"cluster": "m", "user": "hub"}}],
    })  # fmt: skip
    client = KubeMemberClient.from_kubeconfig("m", text)
    tenant = tenant_for(f"rbac-{uuid.uuid4().hex[:6]}", "cgadm-hub", None)
    try:
        assert client.list_nodes()
        with pytest.raises(RestError) as denied:
            client.rest.request("GET", "/api/v1/secrets")
        assert denied.value.status == 403
        # All a dispatch does on a member, through this role alone: the tenant namespace with
        # its quota and limits, then (a policy change) both patched, then a Job in it.
        client.ensure_namespace(tenant)
        tighter = dataclasses.replace(tenant, quota={"pods": "7"})
        client.ensure_namespace(tighter)
        quota = client.rest.request(
            "GET", f"/api/v1/namespaces/{tenant.name}/resourcequotas/computegrid-tenant"
        )
        assert quota["spec"]["hard"]["pods"] == "7"
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe"},
               "spec": {"template": restricted_template("busybox", restartPolicy="Never")}}  # fmt: skip
        assert client.create_job(tenant.name, job)["metadata"]["namespace"] == tenant.name
    finally:
        client.close()
        kubectl(member, "delete", "namespace", tenant.name, "--wait=false", "--ignore-not-found")
