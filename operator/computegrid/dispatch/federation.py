"""What goes to a member that is itself a computegrid hub: a ComputeJob, never a Job (pure).

A parent hub sees a child hub's clusters as ``<member>/<child cluster>`` (``fleet.federation``)
and, having chosen one, creates on the child hub a ComputeJob that stands for its own: the
same deterministic name and namespace rules as a member Job (``dispatch.spec``), labelled with
this hub's identity, the job's uid and the attempt, so the parent's watch of the child selects
it and ``create_or_adopt`` adopts it after a lost answer exactly as it adopts a Job.

Loops are impossible: the child ComputeJob carries the hubs it passed through
(``computegrid.io/path``), and a hub refuses a job whose path already names it or is
``MAX_DEPTH`` hubs long.
"""

from __future__ import annotations

from typing import Any

from computegrid.api import (
    ANN_PATH,
    GROUP,
    LABEL_ATTEMPT,
    LABEL_JOB_UID,
    LABEL_ORIGIN_CLUSTER,
    ComputeJob,
)
from computegrid.api.member_cluster import CHILD_SEPARATOR
from computegrid.dispatch.spec import (
    ANN_SOURCE,
    DEFAULT_TENANT_TEMPLATE,
    LABEL_MANAGED_BY,
    LABEL_TENANT,
    MANAGER,
    remote_name,
    tenant_namespace,
)

MAX_DEPTH = 4  # hubs a job may pass through: national → regional → provincial → city


def split_cluster(name: str) -> tuple[str, str | None]:
    """``"<member>/<child>"`` → (member, child); a plain member's name → (name, None)."""
    member, sep, child = name.partition(CHILD_SEPARATOR)
    return member, (child if sep else None)


def path_of(annotations: dict[str, str]) -> list[str]:
    """The hubs a job passed through before this one, oldest first."""
    raw = annotations.get(ANN_PATH, "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def route_problem(annotations: dict[str, str], hub: str) -> str | None:
    """Why hub ``hub`` must refuse a job that came this way, or None."""
    path = path_of(annotations)
    if hub in path:
        return (
            f"metadata.annotations[{ANN_PATH}]: the job already passed through hub {hub} "
            f"({' → '.join(path)}): refused, it would loop"
        )
    if len(path) >= MAX_DEPTH:
        return (
            f"metadata.annotations[{ANN_PATH}]: the job passed through {len(path)} hubs "
            f"({' → '.join(path)}); at most {MAX_DEPTH} are allowed"
        )
    return None


def build_child_computejob(
    cj: ComputeJob,
    *,
    origin_cluster: str,
    attempt: int,
    pinned_cluster: str | None,
    tenant_template: str = DEFAULT_TENANT_TEMPLATE,
) -> dict[str, Any]:
    """The ComputeJob for ``cj`` on a child hub (pure; ValueError on bad input).

    ``origin_cluster`` is this hub's name (label and the new path entry); ``pinned_cluster``
    the child's cluster in Pinned delegation, None in Autonomous: then the child places by its
    own policy, and the origin and latency annotations, copied as they are, keep it within
    the job's budget from the job's origin.
    """
    meta = cj.metadata
    if not meta.namespace or not meta.uid:
        raise ValueError("a ComputeJob needs metadata.namespace and metadata.uid")
    spec = cj.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    placement = dict(spec.get("placement") or {})
    placement.pop("pinnedCluster", None)
    if pinned_cluster:
        placement["pinnedCluster"] = pinned_cluster
    spec["placement"] = placement
    annotations = {k: v for k, v in meta.annotations.items() if k.startswith(GROUP)}
    annotations[ANN_PATH] = ",".join([*path_of(meta.annotations), origin_cluster])
    annotations[ANN_SOURCE] = f"{meta.namespace}/{meta.name}"
    return {
        "apiVersion": cj.api_version,
        "kind": "ComputeJob",
        "metadata": {
            "name": remote_name(meta.namespace, meta.name, meta.uid),
            "namespace": tenant_namespace(meta.namespace, origin_cluster, tenant_template),
            "labels": {
                LABEL_JOB_UID: meta.uid,
                LABEL_ORIGIN_CLUSTER: origin_cluster,
                LABEL_MANAGED_BY: MANAGER,
                LABEL_TENANT: meta.namespace,
                LABEL_ATTEMPT: str(attempt),
            },
            "annotations": annotations,
        },
        "spec": spec,
    }
