"""Tenants on members, proved with the operator running: a job of hub namespace ``a`` lands
only in the member namespace this hub owns for ``a``, made with the hub's ownership and Pod
Security labels, a ResourceQuota and a LimitRange; a foreign namespace of that name is
refused (``ForeignNamespace``), never adopted, and nothing is created in it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from operator_fixtures import (
    HUB_NAME,
    Hub,
    OperatorProcess,
    computejob,
    jobs_with_uid,
    member_namespace,
    wait_for,
)

from computegrid.api.pod_policy import DEFAULT_LIMIT_RANGE, DEFAULT_QUOTA
from computegrid.api.quantities import parse_quantity

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]
PSS = "pod-security.kubernetes.io"


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def test_a_job_lands_only_in_the_namespace_this_hub_owns(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    uid = hub.create(computejob("tenant-a", origin="chengdu"))["metadata"]["uid"]
    status = hub.wait_phase("tenant-a", "Succeeded")  # pods ran under the quota and PSS
    cluster, owned = status["remote"]["cluster"], member_namespace(namespace)
    assert status["remote"]["namespace"] == owned == f"{HUB_NAME}-{namespace}"
    copies = {m: jobs_with_uid(api, uid) for m, api in member_apis.items()}
    assert {m: len(j) for m, j in copies.items()} == {m: int(m == cluster) for m in member_apis}
    job = copies[cluster][0]
    assert job.metadata.namespace == owned
    assert job.spec.template.spec.automount_service_account_token is False
    for name, api in member_apis.items():  # the member's own same-named namespace: untouched
        assert not client.BatchV1Api(api).list_namespaced_job(namespace).items, name

    core = client.CoreV1Api(member_apis[cluster])
    labels = core.read_namespace(owned).metadata.labels
    assert labels["computegrid.io/origin-cluster"] == HUB_NAME
    assert labels["computegrid.io/tenant"] == namespace
    assert all(labels[f"{PSS}/{mode}"] == "restricted" for mode in ("enforce", "audit", "warn"))
    quotas = core.list_namespaced_resource_quota(owned).items
    want = {k: parse_quantity(v) for k, v in DEFAULT_QUOTA.items()}  # the server says "2k"
    assert [{k: parse_quantity(v) for k, v in q.spec.hard.items()} for q in quotas] == [want]
    limits = core.list_namespaced_limit_range(owned).items
    assert len(limits) == 1 and limits[0].spec.limits[0].type == "Container"
    assert limits[0].spec.limits[0].default_request == DEFAULT_LIMIT_RANGE["defaultRequest"]


def test_a_foreign_namespace_of_that_name_is_refused_and_left_alone(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    owned = member_namespace(namespace)
    for api in member_apis.values():  # someone else's namespace of exactly that name
        body = {"metadata": {"name": owned, "labels": {"team": "someone-else"}}}
        client.CoreV1Api(api).create_namespace(body)
    hub = Hub(hub_api, namespace)
    uid = hub.create(computejob("tenant-b", origin="chengdu"))["metadata"]["uid"]

    def refused() -> dict[str, Any] | None:
        status = hub.status("tenant-b")
        cond = conditions(status).get("Dispatched") or {}
        return status if cond.get("reason") == "ForeignNamespace" else None

    status = wait_for(refused, "Dispatched=False ForeignNamespace")
    dispatched = conditions(status)["Dispatched"]
    assert status["phase"] == "Pending" and dispatched["status"] == "False"
    assert owned in dispatched["message"] and "never adopted" in dispatched["message"]
    assert not status.get("remote")
    events = wait_for(
        lambda: [e for e in hub.events("tenant-b") if e.reason == "ForeignNamespace"],
        "a ForeignNamespace Warning Event",
    )
    assert events[0].type == "Warning"
    time.sleep(5.0)  # a retry loop would show here: more Events, a Job, a relabel
    assert hub.status("tenant-b")["phase"] == "Pending"
    assert len([e for e in hub.events("tenant-b") if e.reason == "ForeignNamespace"]) <= 2
    for name, api in member_apis.items():
        core = client.CoreV1Api(api)
        assert not jobs_with_uid(api, uid), name
        assert not client.BatchV1Api(api).list_namespaced_job(owned).items, name
        assert not core.list_namespaced_resource_quota(owned).items, name
        assert not core.list_namespaced_limit_range(owned).items, name
        assert core.read_namespace(owned).metadata.labels == {
            "team": "someone-else",
            "kubernetes.io/metadata.name": owned,
        }, name
