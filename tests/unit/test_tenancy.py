"""Tenant namespaces on members: the name a hub namespace maps to and what it must carry."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computegrid.api import PodPolicy
from computegrid.dispatch import ForeignNamespace, check_tenant_template, tenant_for
from computegrid.dispatch import tenant_namespace as tn
from computegrid.fleet.client import KubeMemberClient
from computegrid.fleet.rest import ApiException

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_default_is_hub_dash_namespace() -> None:
    assert tn("a", "gansu-hub") == "gansu-hub-a"
    assert tn("a", "h", "{namespace}") == "a"  # the old 1:1 mapping, if a platform wants it
    assert tn("ml", "h", "tenant-{namespace}-of-{hub}") == "tenant-ml-of-h"


def test_a_long_name_is_cut_with_a_hash_that_keeps_names_apart() -> None:
    ns = "n" * 63
    a, b = tn(ns, "hub-x"), tn(ns, "hub-y")
    assert len(a) == 63 and a.startswith("hub-x-nnn") and DNS_LABEL.match(a)
    assert a != b and a == tn(ns, "hub-x")  # distinct and deterministic
    assert tn(ns[:-1] + "m", "hub-x") != a  # differs only past the cut: still distinct


@given(
    namespace=st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z"),
    hub=st.from_regex(r"\A[a-zA-Z0-9][-a-zA-Z0-9_.]{0,40}\Z"),
)
def test_every_result_is_a_dns_label(namespace: str, hub: str) -> None:
    name = tn(namespace, hub)
    assert len(name) <= 63 and DNS_LABEL.match(name), name


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{hub}", "must contain {namespace}"),
        ("{namespace}-{user}", "unknown field"),
        ("{namespace", "tenant namespace template"),
        ("{namespace!r}", "no conversions"),
        ("{namespace:>70}", "no conversions"),
        ("{namespace.real}", "unknown field"),
    ],
)
def test_bad_templates_are_refused(template: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        check_tenant_template(template)
        tn("a", "h", template)


def test_namespace_carries_ownership_and_pod_security_labels() -> None:
    tenant = tenant_for("a", "gansu-hub", None)
    labels = tenant.namespace_body()["metadata"]["labels"]
    assert labels["computegrid.io/origin-cluster"] == "gansu-hub"
    assert labels["computegrid.io/tenant"] == "a"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_a_baseline_tenant_gets_baseline_labels() -> None:
    policy = PodPolicy.model_validate({"namespaces": {"hpc": {"level": "baseline"}}})
    assert tenant_for("hpc", "h", policy).labels()["pod-security.kubernetes.io/enforce"] == (
        "baseline"
    )
    assert tenant_for("a", "h", policy).level == "restricted"


def test_quota_and_limit_range_come_from_the_policy() -> None:
    data = PodPolicy().to_configmap_data()
    data["tenant.resourceQuota"] = json.dumps({"pods": "10", "requests.nvidia.com/gpu": "4"})
    data["tenant.limitRange"] = json.dumps({"defaultRequest": {"cpu": "50m"}})
    tenant = tenant_for("a", "h", PodPolicy.from_configmap_data(data))
    quota, limits = tenant.quota_body(), tenant.limit_range_body()
    assert quota is not None and limits is not None
    assert quota["metadata"]["namespace"] == "h-a"
    assert quota["spec"]["hard"] == {"pods": "10", "requests.nvidia.com/gpu": "4"}
    assert limits["spec"]["limits"] == [{"type": "Container", "defaultRequest": {"cpu": "50m"}}]


def test_defaults_have_a_quota_and_default_requests_but_no_default_limits() -> None:
    tenant = tenant_for("a", "h", PodPolicy())
    quota, limits = tenant.quota_body(), tenant.limit_range_body()
    assert quota is not None and set(quota["spec"]["hard"]) >= {"pods", "requests.cpu"}
    assert limits is not None and "default" not in limits["spec"]["limits"][0]


def test_empty_sections_mean_no_object() -> None:
    data = {"tenant.resourceQuota": "{}", "tenant.limitRange": "{}"}
    tenant = tenant_for("a", "h", PodPolicy.from_configmap_data(data))
    assert tenant.quota_body() is None and tenant.limit_range_body() is None


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("tenant.resourceQuota", "{pods: 1", "data[tenant.resourceQuota]: not JSON"),
        ("tenant.resourceQuota", '["pods"]', "expected an object"),
        ("tenant.resourceQuota", '{"pods": "lots"}', "not a quantity"),
        ("tenant.resourceQuota", '{"pods": "-1"}', "negative"),
        ("tenant.resourceQuota", '{"bad name!": "1"}', "not a resource name"),
        ("tenant.limitRange", '{"maximum": {"cpu": "1"}}', "tenant.limitRange.maximum"),
        ("tenant.limitRange", '{"max": "1"}', "expected an object"),
    ],
)
def test_bad_tenant_sections_are_refused_naming_the_key(key: str, value: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        PodPolicy.from_configmap_data({key: value})


def test_configmap_round_trip() -> None:
    policy = PodPolicy.model_validate({"tenant": {"resourceQuota": {"pods": "3"}}})
    assert PodPolicy.from_configmap_data(policy.to_configmap_data()) == policy


@pytest.mark.parametrize(
    "labels",
    [
        {},  # the member's own namespace
        {"computegrid.io/origin-cluster": "other-hub", "computegrid.io/tenant": "a"},
        {"computegrid.io/origin-cluster": "h", "computegrid.io/tenant": "b"},
        {"computegrid.io/origin-cluster": "h"},
    ],
)
def test_a_namespace_this_hub_did_not_make_for_this_tenant_is_foreign(
    labels: dict[str, str],
) -> None:
    tenant = tenant_for("a", "h", None)
    with pytest.raises(ForeignNamespace, match="never adopted") as info:
        tenant.check_owned({"metadata": {"name": "h-a", "labels": labels}}, "m1")
    assert info.value.reason == "ForeignNamespace"


def test_its_own_namespace_is_accepted() -> None:
    tenant = tenant_for("a", "h", None)
    tenant.check_owned(tenant.namespace_body(), "m1")


def test_fingerprint_follows_the_policy() -> None:
    one = tenant_for("a", "h", None)
    two = tenant_for("a", "h", PodPolicy.model_validate({"tenant": {"resourceQuota": {}}}))
    assert one.fingerprint() == tenant_for("a", "h", None).fingerprint()
    assert one.fingerprint() != two.fingerprint()


class ApiServer:
    """Just enough of a member's API for ``KubeMemberClient.ensure_namespace``: objects by
    path, every request recorded, a new quota's status filled in as the quota controller
    would."""

    def __init__(self, objects: dict[str, dict[str, Any]] | None = None) -> None:
        self.objects = dict(objects or {})
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        body = kw.get("body") or {}
        if method == "GET":
            if path not in self.objects:
                raise ApiException(status=404, reason="NotFound")
            return self.objects[path]
        if method == "POST":
            name = body["metadata"]["name"]
            target = f"{path}/{name}"
            if target in self.objects:
                raise ApiException(status=409, reason="AlreadyExists")
            self.objects[target] = {**body, "status": {"hard": body.get("spec", {}).get("hard")}}
            return self.objects[target]
        if method == "PATCH":
            self.objects[path] = {**self.objects[path], **body}
            return self.objects[path]
        raise AssertionError(method)


def member(objects: dict[str, dict[str, Any]] | None = None) -> tuple[KubeMemberClient, ApiServer]:
    server = ApiServer(objects)
    return KubeMemberClient("m1", server), server  # type: ignore[arg-type]


def test_ensure_creates_namespace_quota_and_limits_once_per_member() -> None:
    client, server = member()
    tenant = tenant_for("a", "h", None)
    for _ in range(50):  # fifty jobs of one tenant: one check, not fifty
        client.ensure_namespace(tenant)
    made = [path for method, path in server.calls if method == "POST"]
    assert made == [
        "/api/v1/namespaces",
        "/api/v1/namespaces/h-a/resourcequotas",
        "/api/v1/namespaces/h-a/limitranges",
    ]
    assert len(server.calls) == 5  # GET (404), 3 POSTs, the new quota's status read
    labels = server.objects["/api/v1/namespaces/h-a"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_policy_change_patches_the_quota() -> None:
    client, server = member()
    client.ensure_namespace(tenant_for("a", "h", None))
    tighter = PodPolicy.model_validate({"tenant": {"resourceQuota": {"pods": "3"}}})
    client.ensure_namespace(tenant_for("a", "h", tighter))
    quota = server.objects["/api/v1/namespaces/h-a/resourcequotas/computegrid-tenant"]
    assert quota["spec"]["hard"] == {"pods": "3"}
    assert ("PATCH", "/api/v1/namespaces/h-a/resourcequotas/computegrid-tenant") in server.calls


def test_a_foreign_namespace_is_refused_and_nothing_is_created_in_it() -> None:
    foreign = {"/api/v1/namespaces/h-a": {"metadata": {"name": "h-a", "labels": {}}}}
    client, server = member(foreign)
    for _ in range(2):  # refused every time: never cached as ensured
        with pytest.raises(ForeignNamespace, match="h-a on m1"):
            client.ensure_namespace(tenant_for("a", "h", None))
    assert [m for m, _ in server.calls] == ["GET", "GET"]
