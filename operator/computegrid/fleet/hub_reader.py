"""Read-only access to the hub for command-line readers (``kubectl computegrid``).

The hub is whatever the user's kubeconfig points at, as kubectl resolves it: ``--kubeconfig``
or the ``KUBECONFIG`` variable or ``~/.kube/config``, and ``--context`` or the current
context. A private ``Configuration`` as in ``fleet.client``; every call is bounded.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from computegrid.api import GROUP, VERSION
from computegrid.fleet.rest import DEFAULT_TIMEOUT, Body


class HubError(RuntimeError):
    """The hub cannot be reached or refused; the message says which object and why."""


class HubReader:
    """MemberClusters and ComputeJobs of the hub, as plain dicts."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        configuration = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError) as exc:
            raise HubError(f"kubeconfig: {exc}") from None
        configuration.retries = 0
        self.api = client.ApiClient(configuration)
        self.timeout = timeout
        self._custom: Any = client.CustomObjectsApi(self.api)

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Body:
        try:
            response = method(
                GROUP,
                VERSION,
                *args,
                _request_timeout=self.timeout,
                _preload_content=False,
                **kwargs,
            )
        except ApiException as exc:
            reason = exc.reason or ""
            with contextlib.suppress(ValueError):
                reason = json.loads(exc.body or "{}").get("message") or reason
            raise HubError(f"{what}: {exc.status} {reason}".strip()) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, timed out, TLS
            cause = getattr(exc, "reason", None) or exc
            raise HubError(f"{what}: the hub did not answer: {cause}") from None
        data: Body = json.loads(response.data)
        return data

    def member_clusters(self, selector: str = "") -> list[Body]:
        """MemberClusters, those matching a label selector when one is given."""
        body = self._call("list memberclusters", self._custom.list_cluster_custom_object,
                          "memberclusters", label_selector=selector)  # fmt: skip
        items: list[Body] = body["items"]
        return items

    def compute_jobs(self) -> list[Body]:
        body = self._call("list computejobs", self._custom.list_cluster_custom_object,
                          "computejobs")  # fmt: skip
        items: list[Body] = body["items"]
        return items

    def compute_job(self, namespace: str, name: str) -> Body:
        return self._call(
            f"computejob {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            namespace,
            "computejobs",
            name,
        )

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]


def context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the (given or current) context, as kubectl defaults it; 'default'."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError):
        return "default"
    if context:
        active = next((c for c in contexts if c["name"] == context), active)
    return str((active or {}).get("context", {}).get("namespace") or "default")
