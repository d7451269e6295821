"""Pure builders of what goes to a member: the batch/v1 Job and the names it lives under.

Why deterministic names: a handler killed after the member created the Job but before the
hub recorded it re-runs, and must find that Job rather than make a second one. The name is a
hash of the ComputeJob's namespace, name and uid (never ``generateName``), and the uid is
also a label, so the Job can be found on any member by a label selector after a restart.
"""

from __future__ import annotations

import copy
import hashlib
import re
import string
from typing import Any

from computegrid.api import (
    ANN_BACKOFF_LIMIT as ANN_BACKOFF_LIMIT,  # re-exported: dispatch's callers read it here
)
from computegrid.api import (
    GPU,
    GROUP,
    LABEL_ATTEMPT,
    LABEL_COMPUTE_TYPE,
    LABEL_JOB_UID,
    LABEL_ORIGIN_CLUSTER,
    ComputeJob,
)

ANN_SOURCE = f"{GROUP}/source"
LABEL_TENANT = f"{GROUP}/tenant"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "computegrid"
DEFAULT_BACKOFF_LIMIT = 2
_UNSAFE = re.compile(r"[^a-z0-9-]+")


def remote_name(namespace: str, name: str, uid: str) -> str:
    """``cg-<name>-<hash>``: stable for one ComputeJob, different for a re-created one.

    At most 52 characters, so the Job controller's pod names and its ``job-name`` label
    (63 characters) still fit.
    """
    digest = hashlib.sha256(f"{namespace}/{name}/{uid}".encode()).hexdigest()[:10]
    stem = _UNSAFE.sub("-", name.lower()).strip("-")[:38].strip("-") or "job"
    return f"cg-{stem}-{digest}"


DEFAULT_TENANT_TEMPLATE = "{hub}-{namespace}"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FIELDS = ("hub", "namespace")


def check_tenant_template(template: str) -> str:
    """``template`` if it is usable; ValueError naming what is wrong otherwise.

    It must name ``{namespace}`` (else every tenant would share one member namespace) and may
    name ``{hub}``; nothing else.
    """
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise ValueError(f"tenant namespace template {template!r}: {exc}") from None
    names = [f for f, _, _ in parts if f is not None]
    if any(spec or conv for f, spec, conv in parts if f is not None):
        raise ValueError(
            f"tenant namespace template {template!r}: plain {{hub}} and {{namespace}} only,"
            " no conversions or format specs"
        )
    unknown = sorted(set(names) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"tenant namespace template {template!r}: unknown field(s) {', '.join(unknown)};"
            " use {hub} and {namespace}"
        )
    if "namespace" not in names:
        raise ValueError(f"tenant namespace template {template!r}: must contain {{namespace}}")
    return template


def tenant_namespace(
    hub_namespace: str, hub_name: str, template: str = DEFAULT_TENANT_TEMPLATE
) -> str:
    """The member namespace this hub owns for hub namespace ``hub_namespace`` (pure).

    ``<hub>-<namespace>`` by default, so two hubs (or a hub and the member's own users) never
    share a namespace by accident. The result is a DNS-1123 label: lower-cased, other
    characters made ``-``; a name over 63 characters keeps its first 54 and ends with ``-`` and
    8 hex digits of a hash of the whole name, so it stays unique and the same on every call.
    """
    check_tenant_template(template)
    raw = template.format(hub=hub_name, namespace=hub_namespace)
    name = _UNSAFE.sub("-", raw.lower()).strip("-")
    if len(name) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    if not _DNS_LABEL.match(name):
        raise ValueError(f"tenant namespace template {template!r} gives {raw!r}: not a name")
    return name


def backoff_limit(cj: ComputeJob) -> int:
    raw = cj.metadata.annotations.get(ANN_BACKOFF_LIMIT)
    if raw is None:
        return DEFAULT_BACKOFF_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise ValueError(f"metadata.annotations[{ANN_BACKOFF_LIMIT}]: {raw!r} is not in 0..100")
    return value


def _with_requests(template: dict[str, Any], resources: dict[str, str]) -> dict[str, Any]:
    """The pod template with the job's per-pod requests on its first container.

    Extended resources (GPUs) must also be limits, so they are set there too; containers
    after the first keep what the user wrote.
    """
    pod = copy.deepcopy(template)
    spec = pod.setdefault("spec", {})
    containers = spec.get("containers") or []
    if not containers:
        raise ValueError("spec.template.spec.containers: at least one container is required")
    first = containers[0]
    res = first.setdefault("resources", {})
    requests = res.setdefault("requests", {})
    requests.update({k: str(v) for k, v in resources.items()})
    for name, value in resources.items():
        if name not in ("cpu", "memory") and ("." in name or name == GPU):
            res.setdefault("limits", {})[name] = str(value)
    if spec.get("restartPolicy") not in ("Never", "OnFailure"):
        spec["restartPolicy"] = "Never"
    return pod


def build_job_spec(
    cj: ComputeJob,
    cluster: str,
    *,
    origin_cluster: str = "hub",
    attempt: int = 1,
    tenant_template: str = DEFAULT_TENANT_TEMPLATE,
) -> dict[str, Any]:
    """The batch/v1 Job for ``cj`` on member ``cluster`` (pure; raises ValueError on bad input).

    ``origin_cluster`` names the hub the job came from (label ``computegrid.io/origin-cluster``):
    the hub's identity, on which it selects every list, watch and clean-up of member Jobs, so
    two hubs sharing a member never touch each other's Jobs. ``attempt`` is the placement
    attempt (label ``computegrid.io/attempt``): a copy of an older attempt is stale. The
    Job goes into the member namespace this hub owns for the job's hub namespace
    (``tenant_namespace`` with ``tenant_template``).
    """
    meta = cj.metadata
    if not meta.namespace or not meta.uid:
        raise ValueError("a ComputeJob needs metadata.namespace and metadata.uid")
    uid = meta.uid
    labels = {
        LABEL_JOB_UID: uid,
        LABEL_ORIGIN_CLUSTER: origin_cluster,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_TENANT: meta.namespace,
        LABEL_ATTEMPT: str(attempt),
    }
    pod = _with_requests(cj.spec.template, dict(cj.spec.resources))
    pod_meta = pod.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), LABEL_JOB_UID: uid}
    # A member pod never gets an API token: the tenant's code has no business with the
    # member's API, and a token there is what a breakout would use.
    pod["spec"]["automountServiceAccountToken"] = False
    pod["spec"]["nodeSelector"] = {
        **(pod["spec"].get("nodeSelector") or {}),
        LABEL_COMPUTE_TYPE: cj.spec.compute_type.value,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": remote_name(meta.namespace, meta.name, uid),
            "namespace": tenant_namespace(meta.namespace, origin_cluster, tenant_template),
            "labels": labels,
            "annotations": {
                ANN_SOURCE: f"{meta.namespace}/{meta.name}",
                "computegrid.io/cluster": cluster,
            },
        },
        "spec": {
            "parallelism": cj.spec.parallelism,
            "completions": cj.spec.completions or cj.spec.parallelism,
            "backoffLimit": backoff_limit(cj),
            "template": pod,
        },
    }
