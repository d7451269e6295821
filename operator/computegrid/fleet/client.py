"""One Kubernetes client per member cluster, each with its own ``Configuration``.

Why not the default client: Kopf's login (and ``load_kube_config``) overwrite the
``kubernetes`` library's global default configuration, so a member client built from it would
silently talk to the hub. Each member gets an ``ApiClient`` built from its kubeconfig dict
with a private ``Configuration`` and every call carries a request timeout, so an unreachable
member costs a bounded wait in a worker thread and never blocks the event loop.

``MemberClient`` is the protocol the rest of the operator uses; tests swap a member by
handing the registry any object with these methods. Bodies are plain dicts (raw JSON), which
is also cheaper than the client's model classes for large pod lists.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from computegrid.fleet.kubeconfig import read_kubeconfig

#: (connect, read) seconds for every member call: a lost member must fail fast.
DEFAULT_TIMEOUT: tuple[float, float] = (3.0, 10.0)

Body = dict[str, Any]


class MemberClient(Protocol):
    """What the operator asks of a member cluster (all calls are synchronous and bounded)."""

    name: str

    def list_nodes(self) -> list[Body]: ...
    def list_pods(self) -> list[Body]: ...
    def list_jobs(self, label_selector: str) -> list[Body]: ...
    def get_job(self, namespace: str, name: str) -> Body | None: ...
    def create_job(self, namespace: str, body: Body) -> Body: ...
    def delete_job(self, namespace: str, name: str) -> bool: ...
    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None: ...
    def close(self) -> None: ...


def _load(response: Any) -> Body:
    data: Body = json.loads(response.data)
    return data


class KubeMemberClient:
    """``MemberClient`` over the official client; raises ``ApiException`` on API errors."""

    def __init__(self, name: str, api: Any, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        self.name = name
        self.api = api
        self.timeout = timeout
        self._core: Any = client.CoreV1Api(api)
        self._batch: Any = client.BatchV1Api(api)
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
        return cls(name, client.ApiClient(configuration), timeout)

    def _opts(self) -> dict[str, Any]:
        return {"_request_timeout": self.timeout, "_preload_content": False}

    def list_nodes(self) -> list[Body]:
        items: list[Body] = _load(self._core.list_node(**self._opts()))["items"]
        return items

    def list_pods(self) -> list[Body]:
        response = self._core.list_pod_for_all_namespaces(
            field_selector="status.phase!=Succeeded,status.phase!=Failed", **self._opts()
        )
        items: list[Body] = _load(response)["items"]
        return items

    def list_jobs(self, label_selector: str) -> list[Body]:
        response = self._batch.list_job_for_all_namespaces(
            label_selector=label_selector, **self._opts()
        )
        items: list[Body] = _load(response)["items"]
        return items

    def get_job(self, namespace: str, name: str) -> Body | None:
        try:
            return _load(self._batch.read_namespaced_job(name, namespace, **self._opts()))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_job(self, namespace: str, body: Body) -> Body:
        try:
            return _load(self._batch.create_namespaced_job(namespace, body, **self._opts()))
        except ApiException as exc:
            if exc.status == 404:  # the namespace went away since we saw it: recreate once
                self._namespaces.discard(namespace)
                self.ensure_namespace(namespace, {"app.kubernetes.io/managed-by": "computegrid"})
                return _load(self._batch.create_namespaced_job(namespace, body, **self._opts()))
            raise

    def delete_job(self, namespace: str, name: str) -> bool:
        """Delete with propagationPolicy Background; False when it was already gone."""
        try:
            self._batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background", **self._opts()
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None:
        if name in self._namespaces:
            return
        try:
            self._core.read_namespace(name, **self._opts())
            self._namespaces.add(name)
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        try:
            body = {"metadata": {"name": name, "labels": labels}}
            self._core.create_namespace(body, **self._opts())
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._namespaces.add(name)

    def forget_namespace(self, name: str) -> None:
        self._namespaces.discard(name)

    def close(self) -> None:
        self.api.close()


class HubSecrets:
    """Reads member kubeconfig Secrets on the hub with a client of its own.

    The hub client is built from the same kubeconfig Kopf logs in with (or the in-cluster
    service account) into a private Configuration, for the same reason as the members'.
    """

    def __init__(self, kubeconfig_path: str | None, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        configuration = client.Configuration()
        if kubeconfig_path:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig_path,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        self.api = client.ApiClient(configuration)
        self.timeout = timeout
        self._core: Any = client.CoreV1Api(self.api)

    def read(self, namespace: str, name: str, key: str) -> str:
        """The decoded value of one key of a Secret; KeyError naming it when absent."""
        import base64

        secret = _load(
            self._core.read_namespaced_secret(
                name, namespace, _request_timeout=self.timeout, _preload_content=False
            )
        )
        data = secret.get("data") or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode("utf-8")

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]
