"""The default pod policy: what a tenant's pod template may not ask for.

A ComputeJob's pod runs on a member cluster the tenant does not own, so the product refuses
the settings that break out of a tenant's namespace: privileged containers, hostPath volumes
and the host's network, PID or IPC namespaces. Each finding names the field path, the way
``kubectl`` names fields, so the user can find it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def pod_policy_violations(template: Any, path: str = "spec.template") -> list[str]:
    """Every refused setting in a PodTemplateSpec, as ``"<field path>: <why>"`` lines."""
    return list(_violations(template, path))


def _violations(template: Any, path: str) -> Iterator[str]:
    if not isinstance(template, dict):
        yield f"{path}: must be a PodTemplateSpec object"
        return
    spec = template.get("spec")
    if not isinstance(spec, dict):
        yield f"{path}.spec: required (a pod spec with containers)"
        return
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        yield f"{path}.spec.containers: at least one container is required"
    for flag in HOST_NAMESPACES:
        if spec.get(flag) is True:
            yield f"{path}.spec.{flag}: the host's namespaces are refused by the default policy"
    for i, volume in enumerate(_list(spec.get("volumes"))):
        if isinstance(volume, dict) and "hostPath" in volume:
            yield f"{path}.spec.volumes[{i}].hostPath: hostPath volumes are refused"
    for field in CONTAINER_LISTS:
        for i, container in enumerate(_list(spec.get(field))):
            where = f"{path}.spec.{field}[{i}]"
            if not isinstance(container, dict):
                yield f"{where}: must be a container object"
                continue
            security = container.get("securityContext")
            if isinstance(security, dict):
                if security.get("privileged") is True:
                    yield f"{where}.securityContext.privileged: privileged containers are refused"
                if security.get("allowPrivilegeEscalation") is True:
                    yield (
                        f"{where}.securityContext.allowPrivilegeEscalation: "
                        "privilege escalation is refused"
                    )
                caps = security.get("capabilities")
                if isinstance(caps, dict) and "SYS_ADMIN" in _list(caps.get("add")):
                    yield f"{where}.securityContext.capabilities.add: SYS_ADMIN is refused"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
