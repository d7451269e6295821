"""One client per cluster (the hub's and each member's), each with its own ``Configuration``.

Why not the default client: Kopf's login (and ``load_kube_config``) overwrite the
``kubernetes`` library's global default configuration, so a member client built from it would
silently talk to the hub. Each cluster gets a ``Rest`` (one connection pool, raw JSON, a
timeout on every call) from its own kubeconfig, so an unreachable member costs a bounded
wait in a worker thread and never blocks the event loop.

``MemberClient`` is the protocol the rest of the operator uses; tests swap a member by
handing the registry any object with these methods.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from computegrid.fleet.kubeconfig import read_kubeconfig
from computegrid.fleet.rest import DEFAULT_TIMEOUT, MERGE_PATCH, Rest, path_of
from computegrid.fleet.rest import Body as Body

GROUP, VERSION = "computegrid.io", "v1alpha1"
JOBS = "/apis/batch/v1"


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
    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None: ...
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


class KubeMemberClient:
    """``MemberClient`` over ``Rest``; raises ``ApiException`` on API errors."""

    def __init__(self, name: str, rest: Rest) -> None:
        self.name = name
        self.rest = rest
        self._namespaces: set[str] = set()  # seen to exist: saves a read per dispatch

    @classmethod
    def from_kubeconfig(
        cls, name: str, kubeconfig: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> KubeMemberClient:
        """A client from kubeconfig text (certificates inline), its own Configuration.

        The strict reader (``fleet.kubeconfig``) refuses exec, auth providers and file paths;
        its KubeconfigError (a ValueError) names the field and never quotes the Secret.
        """
        configuration = read_kubeconfig(kubeconfig).configuration()
        return cls(name, Rest(configuration, timeout=timeout, pool_size=32))

    def list_nodes(self) -> list[Body]:
        return self.rest.list_all("/api/v1/nodes")[0]

    def list_pods(self) -> list[Body]:
        query = {"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
        return self.rest.list_all("/api/v1/pods", query)[0]

    def list_jobs(self, label_selector: str) -> list[Body]:
        return self.list_jobs_at(label_selector)[0]

    def list_jobs_at(self, label_selector: str) -> tuple[list[Body], str]:
        """Jobs matching the selector in every namespace, and the list's resourceVersion."""
        return self.rest.list_all(JOBS + "/jobs", {"labelSelector": label_selector})

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
        try:
            return self.rest.request("POST", self._job_path(namespace), query=query, body=body)
        except ApiException as exc:
            if exc.status != 404:
                raise
        # The namespace went away since we saw it: make it again, once.
        self._namespaces.discard(namespace)
        labels = dict((body.get("metadata") or {}).get("labels") or {})
        self.ensure_namespace(namespace, {k: v for k, v in labels.items() if "managed-by" in k})
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

    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None:
        if name in self._namespaces:
            return
        try:
            self.rest.request("GET", path_of("api", "v1", "namespaces", name))
            self._namespaces.add(name)
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        try:
            body = {"metadata": {"name": name, "labels": labels}}
            self.rest.request("POST", "/api/v1/namespaces", body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._namespaces.add(name)

    def close(self) -> None:
        self.rest.close()


def hub_configuration(kubeconfig_path: str | None) -> client.Configuration:
    """The hub's Configuration: the kubeconfig Kopf logs in with, or the service account."""
    configuration = client.Configuration()
    if kubeconfig_path:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig_path, client_configuration=configuration, persist_config=False
        )
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class HubClient:
    """The hub: Secrets, ComputeJobs, MemberClusters and Events, through one pool.

    Every write the operator makes to the hub goes through here, so the number in flight is
    bounded by the pool (and by the callers' semaphore) and each retry reuses a connection.
    """

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    @classmethod
    def from_kubeconfig(cls, kubeconfig_path: str | None, pool_size: int = 24) -> HubClient:
        return cls(Rest(hub_configuration(kubeconfig_path), pool_size=pool_size))

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

    def list_computejobs(self) -> tuple[list[Body], str]:
        return self.rest.list_all(path_of("apis", GROUP, VERSION, "computejobs"))

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
