"""The scheduling policy ConfigMap on the hub (the chart's ``<release>-policy``), read raw.

The chart tells the operator where it is in ``COMPUTEGRID_POLICY_CONFIGMAP`` as
``namespace/name``; its ``policy.yaml`` key holds the text that
``fleet_data.policy_file.PolicyKeeper.offer`` checks and swaps in.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from computegrid.fleet.rest import DEFAULT_TIMEOUT
from computegrid.fleet_data.policy_file import POLICY_KEY

ENV = "COMPUTEGRID_POLICY_CONFIGMAP"


def configmap_ref(value: str) -> tuple[str, str]:
    """``"cg-system/cg-policy"`` → (namespace, name); ValueError naming the variable."""
    namespace, _, name = value.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"{ENV}={value!r}: expected namespace/name")
    return namespace, name


def read_policy_text(
    api: Any,
    namespace: str,
    name: str,
    key: str = POLICY_KEY,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> str | None:
    """The policy text, or None when the ConfigMap or its key is absent (the built-in policy).
    Other API errors propagate: the caller keeps its policy and tries again."""
    core: Any = client.CoreV1Api(api)
    try:
        response = core.read_namespaced_config_map(
            name, namespace, _request_timeout=timeout, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = json.loads(response.data).get("data") or {}
    text = data.get(key)
    return None if text is None else str(text)
