"""One client per cluster (the hub's and each member's), each with its own ``Endpoint``.

Each cluster gets a ``Rest`` (one connection pool, raw JSON, a timeout on every call) from
its own credentials, never a process-wide default, so a member client can never talk to the
hub by mistake, and an unreachable member costs a bounded wait in a worker thread and never
blocks the event loop.

``MemberClient`` is the protocol the rest of the operator uses; tests swap a member by
handing the registry any object with these methods.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from computegrid.fleet.endpoint import hub_endpoint
from computegrid.fleet.kubeconfig import read_kubeconfig
from computegrid.fleet.rest import DEFAULT_TIMEOUT, MERGE_PATCH, ApiException, Rest, path_of
from computegrid.fleet.rest import Body as Body
from computegrid.fleet.snapshot import pod_essence
from computegrid.lifecycle.machine import FINISHED

# Calls to one member at once: the fleet's member thread pool. Each member's connection pool
# holds them all plus its Job watch's long-lived connection and one spare: with exactly 32, a
# burst to one member opened a 33rd TLS connection and discarded it ("Connection pool is
# full", once a minute in the 1,000-job runs).
MEMBER_CALLS_AT_ONCE = 32
MEMBER_POOL_SIZE = MEMBER_CALLS_AT_ONCE + 2

GROUP, VERSION = "computegrid.io", "v1alpha1"
JOBS = "/apis/batch/v1"
QUOTA_STATUS_WAIT_S = 5.0


class TenantSpec(Protocol):
    """What a tenant namespace must be (``dispatch.TenantNamespace``; a protocol because the
    fleet and dispatch layers do not import each other)."""

    @property
    def name(self) -> str: ...
    def fingerprint(self) -> str: ...
    def namespace_body(self) -> Body: ...
    def quota_body(self) -> Body | None: ...
    def limit_range_body(self) -> Body | None: ...
    def check_owned(self, existing: Body, cluster: str) -> None: ...


class MemberClient(Protocol):
    """What the operator asks of a member cluster (all calls are synchronous and bounded)."""

    name: str

    def list_nodes(self) -> list[Body]: ...
    def list_pods(self) -> list[Body]: ...
    def list_jobs(self, label_selector: str) -> list[Body]: ...
    def get_job(self, namespace: str, name: str) -> Body | None: ...
    def create_job(self, namespace: str, body: Body) -> Body: ...
    def delete_job(self, namespace: str, name: str) -> bool: ...
    def patch_job(self, namespace: str, name: str, patch: Body) -> Body | None: ...
    def ensure_namespace(self, tenant: TenantSpec) -> None: ...
    def forget_namespace(self, name: str) -> None: ...
    def get_configmap(self, namespace: str, name: str) -> Body | None: ...
    def close(self) -> None: ...


def get_configmap(rest: Rest, namespace: str, name: str) -> Body | None:
    """A whole ConfigMap (data and binaryData: a forecast exporter writes binaryData); None
    when it does not exist."""
    path = path_of("api", "v1", "namespaces", namespace, "configmaps", name)
    try:
        return rest.request("GET", path)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def job_essence(job: Body) -> Body:
    """A listed Job without its pod template and managed fields (most of its bytes): the
    mirror reads metadata, ``spec.suspend``/``ttlSecondsAfterFinished`` and status."""
    meta = {k: v for k, v in (job.get("metadata") or {}).items() if k != "managedFields"}
    spec = {k: v for k, v in (job.get("spec") or {}).items() if k != "template"}
    return {**job, "metadata": meta, "spec": spec}


def computejob_essence(job: Body) -> Body:
    """A ComputeJob as the operator's cache reads it: without managed fields and the
    placement's bulk (``status.placement``: the candidates and their reasons, which the
    operator writes and never reads back), but with the placement's cluster (a pinned
    delegation to a child hub reads it when it creates the child's job)."""
    meta = {k: v for k, v in (job.get("metadata") or {}).items() if k != "managedFields"}
    out = {**job, "metadata": meta}
    status = job.get("status")
    if isinstance(status, dict) and isinstance(status.get("placement"), dict):
        out["status"] = {**status, "placement": {"cluster": status["placement"].get("cluster")}}
    return out


class KubeMemberClient:
    """``MemberClient`` over ``Rest``; raises ``ApiException`` on API errors."""

    def __init__(self, name: str, rest: Rest) -> None:
        self.name = name
        self.rest = rest
        # Tenant namespaces ensured (name → fingerprint of what they carry): one check per
        # namespace and member for the operator's life, not one extra request per job.
        self._namespaces: dict[str, str] = {}

    @classmethod
    def from_kubeconfig(
        cls, name: str, kubeconfig: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> KubeMemberClient:
        """A client from kubeconfig text (certificates inline), with a pool of its own.

        The strict reader (``fleet.kubeconfig``) refuses exec, auth providers and file paths;
        its KubeconfigError (a ValueError) names the field and never quotes the Secret.
        """
        endpoint = read_kubeconfig(kubeconfig).endpoint()
        return cls(name, Rest(endpoint, timeout=timeout, pool_size=MEMBER_POOL_SIZE))

    def list_nodes(self) -> list[Body]:
        return self.rest.list_all("/api/v1/nodes")[0]

    def list_pods(self) -> list[Body]:
        """Pods still holding room, each cut to what the capacity count reads."""
        query = {"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
        return self.rest.list_all("/api/v1/pods", query, keep=pod_essence)[0]

    def list_jobs(self, label_selector: str) -> list[Body]:
        return self.list_jobs_at(label_selector)[0]

    def list_jobs_at(self, label_selector: str) -> tuple[list[Body], str]:
        """Jobs matching the selector in every namespace, and the list's resourceVersion."""
        query = {"labelSelector": label_selector}
        return self.rest.list_all(JOBS + "/jobs", query, keep=job_essence)

    def watch_jobs(
        self, label_selector: str, resource_version: str, server_timeout: int, read_timeout: float
    ) -> Iterator[Body]:
        query = {"labelSelector": label_selector, "resourceVersion": resource_version}
        return self.rest.watch(
            JOBS + "/jobs", query, server_timeout=server_timeout, read_timeout=read_timeout
        )

    def _job_path(self, namespace: str, name: str = "") -> str:
        return JOBS + path_of("namespaces", namespace, "jobs", name)

    def get_configmap(self, namespace: str, name: str) -> Body | None:
        return get_configmap(self.rest, namespace, name)

    def get_job(self, namespace: str, name: str) -> Body | None:
        try:
            return self.rest.request("GET", self._job_path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_job(self, namespace: str, body: Body) -> Body:
        """Create with strict field validation: an unknown field is an error, never dropped."""
        query = {"fieldValidation": "Strict"}
        return self.rest.request("POST", self._job_path(namespace), query=query, body=body)

    def delete_job(self, namespace: str, name: str) -> bool:
        """Delete with propagationPolicy Background; False when it was already gone."""
        try:
            self.rest.request(
                "DELETE",
                self._job_path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def patch_job(self, namespace: str, name: str, patch: Body) -> Body | None:
        """A JSON merge patch of the Job; None when it is gone."""
        try:
            return self.rest.request(
                "PATCH", self._job_path(namespace, name), body=patch, content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def ensure_namespace(self, tenant: TenantSpec) -> None:
        """The tenant's namespace exists, is this hub's, and carries its quota and limits.

        Created when absent; refused (``tenant.check_owned`` raises) when a namespace of that
        name exists without this hub's ownership labels. Its ResourceQuota and LimitRange are
        created, or brought to the policy when they differ. Cached per fingerprint.
        """
        name = tenant.name
        fingerprint = tenant.fingerprint()
        if self._namespaces.get(name) == fingerprint:
            return
        path = path_of("api", "v1", "namespaces", name)
        try:
            existing = self.rest.request("GET", path)
        except ApiException as exc:
            if exc.status != 404:
                raise
            existing = self._create_namespace(tenant, path)
        tenant.check_owned(existing, self.name)
        for body in (tenant.quota_body(), tenant.limit_range_body()):
            if body is not None:
                self._apply(name, body)
        self._namespaces[name] = fingerprint

    def _create_namespace(self, tenant: TenantSpec, path: str) -> Body:
        try:
            return self.rest.request("POST", "/api/v1/namespaces", body=tenant.namespace_body())
        except ApiException as exc:
            if exc.status != 409:
                raise
        return self.rest.request("GET", path)  # made meanwhile (by whom: check_owned says)

    def _apply(self, namespace: str, body: Body) -> None:
        """Create the namespaced object, or merge its spec onto the existing one."""
        plural = {"ResourceQuota": "resourcequotas", "LimitRange": "limitranges"}[body["kind"]]
        collection = path_of("api", "v1", "namespaces", namespace, plural)
        path = path_of("api", "v1", "namespaces", namespace, plural, body["metadata"]["name"])
        try:
            self.rest.request("POST", collection, body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.rest.request("PATCH", path, body={"spec": body["spec"]}, content_type=MERGE_PATCH)
            return
        if plural == "resourcequotas":
            self._await_quota_status(path)

    def _await_quota_status(self, path: str) -> None:
        """Until the member's quota controller has counted a new ResourceQuota, its admission
        refuses every pod of the namespace ("status unknown for quota"); waiting here (once
        per namespace, bounded) spares the first Job's pods the Job controller's backoff."""
        deadline = time.monotonic() + QUOTA_STATUS_WAIT_S
        while time.monotonic() < deadline:
            quota = self.rest.request("GET", path)
            if (quota.get("status") or {}).get("hard"):
                return
            time.sleep(0.2)

    def forget_namespace(self, name: str) -> None:
        self._namespaces.pop(name, None)

    def close(self) -> None:
        self.rest.close()


class HubClient:
    """The hub: Secrets, ComputeJobs, MemberClusters and Events, through one pool.

    Every write the operator makes to the hub goes through here, so the number in flight is
    bounded by the pool (and by the callers' semaphore) and each retry reuses a connection.
    """

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    @classmethod
    def from_kubeconfig(cls, kubeconfig_path: str | None, pool_size: int = 40) -> HubClient:
        # the writer's 32 calls at once (fleet/hubwrites.py), the ComputeJob watch and reads
        return cls(Rest(hub_endpoint(kubeconfig_path), pool_size=pool_size))

    def read_secret(self, namespace: str, name: str, key: str) -> str:
        """The decoded value of one key of a Secret; KeyError naming it when absent."""
        secret = self.rest.request(
            "GET", path_of("api", "v1", "namespaces", namespace, "secrets", name)
        )
        data = secret.get("data") or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode("utf-8")

    def _cj(self, namespace: str, name: str, sub: str = "") -> str:
        return path_of("apis", GROUP, VERSION, "namespaces", namespace, "computejobs", name, sub)

    def get_computejob(self, namespace: str, name: str) -> Body | None:
        try:
            return self.rest.request("GET", self._cj(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_computejob_status(
        self, namespace: str, name: str, status: Body, resource_version: str | None = None
    ) -> Body:
        """Merge-patch ``status``; with a resourceVersion the write is conditional (409)."""
        body: Body = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self.rest.request(
            "PATCH", self._cj(namespace, name, "status"), body=body, content_type=MERGE_PATCH
        )

    def patch_computejob(self, namespace: str, name: str, patch: Body) -> Body:
        return self.rest.request(
            "PATCH", self._cj(namespace, name), body=patch, content_type=MERGE_PATCH
        )

    def get_configmap(self, namespace: str, name: str) -> Body | None:
        return get_configmap(self.rest, namespace, name)

    def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data; None when it does not exist."""
        body = self.get_configmap(namespace, name)
        if body is None:
            return None
        return {str(k): str(v) for k, v in (body.get("data") or {}).items()}

    def unfinished_computejobs(self, namespaces: Sequence[str] = ()) -> list[Body]:
        """Every ComputeJob not Succeeded or Failed (in ``namespaces``; all when empty).

        The hub selects them (the CRD's selectable ``.status.phase``), so a history of
        thousands is neither sent nor parsed; a hub whose CRD predates that answers 400, and
        then every job is listed and the finished ones dropped as each page arrives.
        """

        def unfinished(body: Body) -> Body:
            finished = (body.get("status") or {}).get("phase") in FINISHED
            return {} if finished else computejob_essence(body)

        paths = [self._cjs(ns) for ns in namespaces] or [self._cjs(None)]
        selector = {"fieldSelector": ",".join(f"status.phase!={p}" for p in FINISHED)}
        out = []
        for path in paths:
            try:
                listed, _ = self.rest.list_all(path, selector, keep=unfinished)
            except ApiException as exc:
                if exc.status != 400:
                    raise
                listed, _ = self.rest.list_all(path, keep=unfinished)
            out += [job for job in listed if job]
        return out

    def _cjs(self, namespace: str | None) -> str:
        """The ComputeJobs of one namespace, or of all of them (None)."""
        if namespace is None:
            return path_of("apis", GROUP, VERSION, "computejobs")
        return path_of("apis", GROUP, VERSION, "namespaces", namespace, "computejobs")

    def computejob_pages(
        self, namespace: str | None, page: int = 500
    ) -> Iterator[tuple[list[Body], str]]:
        """Every ComputeJob (``computejob_essence`` of each), a page at a time, with the
        list's resourceVersion: a history of 10,000 is never held parsed at once."""
        return self.rest.pages(self._cjs(namespace), page=page, keep=computejob_essence)

    def watch_computejobs(
        self, namespace: str | None, resource_version: str, server_timeout: int, read_timeout: float
    ) -> Iterator[Body]:
        query = {"resourceVersion": resource_version}
        return self.rest.watch(
            self._cjs(namespace), query, server_timeout=server_timeout, read_timeout=read_timeout
        )

    def list_memberclusters(self) -> list[Body]:
        return self.rest.list_all(path_of("apis", GROUP, VERSION, "memberclusters"))[0]

    def patch_membercluster_status(self, name: str, status: Body) -> Body:
        path = path_of("apis", GROUP, VERSION, "memberclusters", name, "status")
        return self.rest.request("PATCH", path, body={"status": status}, content_type=MERGE_PATCH)

    def create_event(self, namespace: str, body: Body) -> Body:
        return self.rest.request(
            "POST", path_of("api", "v1", "namespaces", namespace, "events"), body=body
        )

    def close(self) -> None:
        self.rest.close()
