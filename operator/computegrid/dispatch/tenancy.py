"""The member namespace a hub owns for one of its tenants: what it must carry (pure).

A hub namespace ``a`` maps to one member namespace (``spec.tenant_namespace``). The operator
creates it on first use with this hub's ownership labels, the Pod Security labels of the
tenant's level, and a ResourceQuota and a LimitRange from the pod policy. A namespace of that
name this hub did not create (no ownership label, another hub's, another tenant's) is never
adopted: ``ForeignNamespace``, a refusal retrying cannot fix, because a tenant placed there
would inherit whatever its owner put in it (Secrets, ServiceAccounts, RoleBindings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from computegrid.api import LABEL_ORIGIN_CLUSTER, PodPolicy
from computegrid.dispatch.spec import (
    DEFAULT_TENANT_TEMPLATE,
    LABEL_MANAGED_BY,
    LABEL_TENANT,
    MANAGER,
    tenant_namespace,
)

Body = dict[str, Any]
PSS = "pod-security.kubernetes.io"
LIMITS_NAME = "computegrid-tenant"  # the ResourceQuota's and the LimitRange's name


class ForeignNamespace(PermissionError):
    """The member namespace of that name exists and this hub does not own it."""

    reason = "ForeignNamespace"


@dataclass(frozen=True)
class TenantNamespace:
    """One tenant's namespace on members, with what goes in it."""

    name: str
    hub: str
    tenant: str  # the hub namespace
    level: str = "restricted"  # the Pod Security level enforced on the member
    quota: dict[str, str] = field(default_factory=dict)
    limit_range: dict[str, dict[str, str]] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        return {
            LABEL_ORIGIN_CLUSTER: self.hub,
            LABEL_TENANT: self.tenant,
            LABEL_MANAGED_BY: MANAGER,
            **{f"{PSS}/{mode}": self.level for mode in ("enforce", "audit", "warn")},
        }

    def fingerprint(self) -> str:
        """Changes when anything the namespace should carry changes (the ensure cache's key)."""
        text = json.dumps([self.labels(), self.quota, self.limit_range], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def namespace_body(self) -> Body:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": self._meta(self.name)}

    def _meta(self, name: str) -> Body:
        return {"name": name, "labels": self.labels()}

    def quota_body(self) -> Body | None:
        if not self.quota:
            return None
        return {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {**self._meta(LIMITS_NAME), "namespace": self.name},
            "spec": {"hard": dict(self.quota)},
        }

    def limit_range_body(self) -> Body | None:
        if not any(self.limit_range.values()):
            return None
        item: Body = {"type": "Container"}
        item.update({kind: dict(v) for kind, v in self.limit_range.items() if v})
        return {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {**self._meta(LIMITS_NAME), "namespace": self.name},
            "spec": {"limits": [item]},
        }

    def check_owned(self, existing: Body, cluster: str) -> None:
        """ForeignNamespace unless ``existing`` (a Namespace) is this hub's for this tenant."""
        labels = (existing.get("metadata") or {}).get("labels") or {}
        if labels.get(LABEL_ORIGIN_CLUSTER) == self.hub and labels.get(LABEL_TENANT) == self.tenant:
            return
        raise ForeignNamespace(
            f"namespace {self.name} on {cluster} exists but was not created by hub {self.hub}"
            f" for tenant {self.tenant}; it is never adopted (rename or remove it there, or"
            " set another tenant namespace template)"
        )


def tenant_for(
    hub_namespace: str,
    hub_name: str,
    policy: PodPolicy | None,
    template: str = DEFAULT_TENANT_TEMPLATE,
) -> TenantNamespace:
    """What the member namespace of ``hub_namespace`` must be, under ``policy``."""
    policy = policy or PodPolicy()
    return TenantNamespace(
        name=tenant_namespace(hub_namespace, hub_name, template),
        hub=hub_name,
        tenant=hub_namespace,
        level=policy.for_namespace(hub_namespace).level.value,
        quota=dict(policy.tenant.resource_quota),
        limit_range={k: dict(v) for k, v in policy.tenant.limit_range.items()},
    )
