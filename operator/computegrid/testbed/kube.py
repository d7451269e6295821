"""Kubernetes client helpers for the test bed: one ApiClient per cluster, waits, objects.

Why: each cluster of a fleet has its own kubeconfig, so every call goes through an
``ApiClient`` built from that file (``new_client_from_config``), never the process-wide
default configuration, which would let one cluster's calls land on another. Waits use
tenacity so that "not yet" (connection refused while a component starts) is retried with a
deadline and everything else surfaces at once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)
from urllib3.exceptions import HTTPError

T = TypeVar("T")

# Errors that mean "the API server is not answering yet" rather than "the request is wrong".
TRANSIENT = (HTTPError, ConnectionError, OSError, TimeoutError)


class NotReadyError(RuntimeError):
    """A wait ran past its deadline."""


def api_client(kubeconfig: Path) -> Any:
    """An ApiClient bound to this kubeconfig alone (its own Configuration)."""
    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]


def wait_for(check: Callable[[], T | None], what: str, timeout: float, interval: float = 0.5) -> T:
    """Call ``check`` until it returns something not None.

    Transient errors (connection refused, timeouts) and 404/429/5xx answers count as "not
    yet"; any other error is raised as is. After ``timeout`` seconds NotReadyError names
    ``what`` and the last problem.
    """

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, ApiException):
            return exc.status in (0, 404, 429, 500, 502, 503, 504)
        return isinstance(exc, TRANSIENT)

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: value is None) | retry_if_exception(transient),
        reraise=False,
    )
    try:
        result = retrying(check)
    except RetryError as exc:  # out of time; any other error was raised at once, unwrapped
        last = exc.last_attempt
        detail = f": {last.exception()}" if last.failed else ""
        raise NotReadyError(f"timed out after {timeout:.0f}s waiting for {what}{detail}") from exc
    assert result is not None
    return result


def server_version(api: Any, timeout: float = 3.0) -> str:
    """``/version`` gitVersion; raises when the API server does not answer."""
    info = client.VersionApi(api).get_code(_request_timeout=timeout)
    return str(info.git_version)


def is_ready(api: Any, timeout: float = 3.0) -> bool:
    """True when ``/readyz`` answers ok within ``timeout`` seconds."""
    try:
        method, url, headers, body, post = api.param_serialize(
            "GET", "/readyz", auth_settings=["BearerToken"]
        )
        response = api.call_api(method, url, headers, body, post, _request_timeout=timeout)
        response.read()
    except (ApiException, *TRANSIENT):
        return False
    data = response.data.decode("utf-8", "replace") if response.status == 200 else ""
    return str(data).strip() == "ok"


def ensure_namespace(api: Any, name: str) -> None:
    core: Any = client.CoreV1Api(api)  # bodies are plain dicts
    try:
        core.create_namespace(body={"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def apply_crds(api: Any, crds: list[dict[str, Any]], timeout: float = 60.0) -> list[str]:
    """Create or replace each CRD, then wait until every one is Established."""
    ext: Any = client.ApiextensionsV1Api(api)  # bodies are plain dicts
    names = []
    for crd in crds:
        name = crd["metadata"]["name"]
        names.append(name)
        try:
            ext.create_custom_resource_definition(body=crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = ext.read_custom_resource_definition(name)
            crd = {**crd, "metadata": {**crd["metadata"]}}
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, body=crd)

    def established() -> bool | None:
        for name in names:
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conds):
                return None
        return True

    wait_for(established, f"CRDs {names} to be established", timeout)
    return names


def inline_kubeconfig(path: Path) -> str:
    """The kubeconfig at ``path`` with its certificate files embedded as *-data fields.

    kwokctl's kubeconfigs point at PKI files in its work dir; a Secret must stand alone.
    """
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = path.parent
    for section, fields in (
        ("clusters", ("certificate-authority",)),
        ("users", ("client-certificate", "client-key")),
    ):
        for entry in doc.get(section) or []:
            body = entry.get(section[:-1]) or {}
            for field in fields:
                file_name = body.pop(field, None)
                if file_name:
                    data = (base / file_name).read_bytes()
                    body[f"{field}-data"] = base64.b64encode(data).decode("ascii")
    return str(yaml.safe_dump(doc, sort_keys=False))


def put_secret(
    api: Any, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]
) -> None:
    """Create or replace an Opaque Secret from string data."""
    core: Any = client.CoreV1Api(api)  # bodies are plain dicts
    body = {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": data,
    }
    try:
        core.create_namespaced_secret(namespace, body=body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(name, namespace, body=body)


def node_body(name: str, labels: dict[str, str], allocatable: dict[str, str]) -> dict[str, Any]:
    """A fake Node kwok will adopt: its capacity and labels are the fleet data's."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                **labels,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {"allocatable": dict(allocatable), "capacity": dict(allocatable)},
    }


def create_nodes(api: Any, bodies: list[dict[str, Any]]) -> None:
    core: Any = client.CoreV1Api(api)  # bodies are plain dicts
    for body in bodies:
        try:
            core.create_node(body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise


def ready_nodes(api: Any) -> set[str]:
    """Names of the Nodes whose Ready condition is True."""
    core: Any = client.CoreV1Api(api)
    nodes = core.list_node(_request_timeout=5).items
    ready: set[str] = set()
    for node in nodes:
        conds = (node.status and node.status.conditions) or []
        if any(c.type == "Ready" and c.status == "True" for c in conds):
            ready.add(node.metadata.name)
    return ready


def node_leases_renewed_since(api: Any, since: datetime) -> bool | None:
    """True when every Node's Lease was renewed after ``since`` (kwok manages them again)."""
    core: Any = client.CoreV1Api(api)
    coordination: Any = client.CoordinationV1Api(api)
    nodes = {n.metadata.name for n in core.list_node(_request_timeout=5).items}
    leases = coordination.list_namespaced_lease("kube-node-lease", _request_timeout=5).items
    renewed = {
        lease.metadata.name
        for lease in leases
        if lease.spec.renew_time is not None and lease.spec.renew_time > since
    }
    return True if nodes <= renewed else None
