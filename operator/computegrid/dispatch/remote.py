"""Create-or-adopt of the member Job; idempotent by name and uid label.

``JobClient`` is the slice of a member client dispatch needs. It is a structural protocol,
so the fleet's ``KubeMemberClient`` (or a test double) fits without dispatch importing the
fleet package (they are independent layers); an API error it raises carries the HTTP
``status`` (409: a Job of that name exists). Calls are synchronous and bounded by the
client's request timeout; the handlers run them in the fleet's thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from computegrid.api import LABEL_JOB_UID
from computegrid.dispatch.tenancy import TenantNamespace

Body = dict[str, Any]


class JobClient(Protocol):
    name: str

    def list_jobs(self, label_selector: str) -> list[Body]: ...
    def get_job(self, namespace: str, name: str) -> Body | None: ...
    def create_job(self, namespace: str, body: Body) -> Body: ...
    def delete_job(self, namespace: str, name: str) -> bool: ...
    def ensure_namespace(self, tenant: TenantNamespace) -> None: ...
    def forget_namespace(self, name: str) -> None: ...


@dataclass(frozen=True)
class Remote:
    """A Job on a member: where it is and its body."""

    cluster: str
    namespace: str
    name: str
    uid: str | None
    body: Body
    adopted: bool

    def ref(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }


def _remote(cluster: str, body: Body, adopted: bool) -> Remote:
    meta = body.get("metadata") or {}
    return Remote(
        cluster, meta.get("namespace", ""), meta.get("name", ""), meta.get("uid"), body, adopted
    )


def _create(member: JobClient, body: Body, tenant: TenantNamespace) -> Body:
    namespace = body["metadata"]["namespace"]
    member.ensure_namespace(tenant)  # ForeignNamespace when that name is not this hub's
    try:
        return member.create_job(namespace, body)
    except Exception as exc:
        if getattr(exc, "status", None) != 404:
            raise
    # The namespace went away since it was ensured: make it again (and check it), once.
    member.forget_namespace(namespace)
    member.ensure_namespace(tenant)
    return member.create_job(namespace, body)


def create_or_adopt(member: JobClient, body: Body, tenant: TenantNamespace) -> Remote:
    """Create the Job in the tenant's namespace; adopt the existing one on 409 (same
    deterministic name).

    An existing Job of that name without this ComputeJob's uid label is not ours: refused
    rather than adopted, so a user's own Job is never taken over.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if namespace != tenant.name:
        raise ValueError(f"Job {name} is for namespace {namespace}, not the tenant's {tenant.name}")
    try:
        return _remote(member.name, _create(member, body, tenant), adopted=False)
    except Exception as exc:
        if getattr(exc, "status", None) != 409:  # an API error carries its HTTP status
            raise
    existing = member.get_job(namespace, name)
    if existing is None:  # deleted between the 409 and the read: the next try creates it
        raise RuntimeError(f"Job {namespace}/{name} on {member.name} vanished during adoption")
    uid = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_JOB_UID)
    if uid != meta["labels"][LABEL_JOB_UID]:
        raise PermissionError(
            f"Job {namespace}/{name} on {member.name} exists but is not this ComputeJob's"
        )
    return _remote(member.name, existing, adopted=True)
