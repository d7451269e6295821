"""Which body a dispatch sends: a batch/v1 Job to a plain member, a ComputeJob to a member
that is itself a computegrid hub (issue 10); and whether this hub may take a job at all.

The controller and the placer call these two functions and nothing else of federation, so
their flow (record on the hub first, create-or-adopt by deterministic name, mirror by watch)
is the same for both kinds of member.
"""

from __future__ import annotations

from typing import Any

from computegrid.api import Delegation
from computegrid.dispatch import build_job_spec
from computegrid.dispatch.federation import build_child_computejob, route_problem, split_cluster
from computegrid.fleet import Fleet
from computegrid.fleet.federation import is_hub
from computegrid.handlers.jobcache import Entry


def remote_body(
    fleet: Fleet, entry: Entry, cluster: str, attempt: int, hub: str, tenant_template: str
) -> dict[str, Any]:
    """What to create on member ``cluster`` for this attempt of ``entry``, in the namespace
    this hub owns there for the job's namespace (``tenant_template``)."""
    state = fleet.members.get(cluster)
    if state is None or not is_hub(state.spec):
        return build_job_spec(
            entry.job(),
            cluster,
            origin_cluster=hub,
            attempt=attempt,
            tenant_template=tenant_template,
        )
    pinned = None
    if state.spec.delegation == Delegation.PINNED:
        chosen = str((entry.status.get("placement") or {}).get("cluster") or "")
        member, child = split_cluster(chosen)
        if member == cluster:
            pinned = child
    return build_child_computejob(
        entry.job(),
        origin_cluster=hub,
        attempt=attempt,
        pinned_cluster=pinned,
        tenant_template=tenant_template,
    )


def refusal(entry: Entry, hub: str) -> str | None:
    """Why this hub refuses the job (it passed through here already, or too many hubs)."""
    return route_problem(dict(entry.meta.get("annotations") or {}), hub)
