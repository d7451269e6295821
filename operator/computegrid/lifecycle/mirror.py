"""Member Job status → ComputeJob status (pure), and the compact copy the watches keep.

The operator watches the computegrid Jobs of each member (``fleet/watch.py``) and keeps, per
Job, only the few fields below (a ``Copy``), not the body: at 10,000 jobs the bodies would
be most of the operator's memory.

Two kinds of copy (issue 10): a batch/v1 Job on a plain member cluster, and a ComputeJob on a
member that is itself a computegrid hub. The state machine reads both the same way; only
``copy_of`` tells them apart, by the body's ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from computegrid.api import GROUP, LABEL_ATTEMPT, Phase
from computegrid.lifecycle.machine import Copy

ANN_SOURCE = f"{GROUP}/source"  # the ComputeJob a member Job stands for (dispatch.spec)


@dataclass(frozen=True)
class Mirrored:
    """What a member Job says about the ComputeJob."""

    phase: Phase
    active: int
    succeeded: int
    failed: int
    start_time: str | None
    completion_time: str | None
    message: str

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def mirror(job: dict[str, Any]) -> Mirrored:
    """The phase and counts of a batch/v1 Job body."""
    status = job.get("status") or {}
    active = int(status.get("active") or 0)
    succeeded = int(status.get("succeeded") or 0)
    failed = int(status.get("failed") or 0)
    complete = _condition(status, "Complete")
    failure = _condition(status, "Failed")
    if complete is not None:
        phase, message = Phase.SUCCEEDED, f"{succeeded} pods succeeded"
    elif failure is not None:
        phase = Phase.FAILED
        message = f"{failure.get('reason', 'Failed')}: {failure.get('message', '')}".strip()
    elif int(status.get("ready") or 0) > 0 or succeeded > 0 or failed > 0:
        # Running means pods ran: what failover IfNotStarted asks. A Job's startTime and
        # ``active`` count pods that may still be pulling images or waiting for a node.
        phase, message = Phase.RUNNING, f"{active} pods active, {succeeded} succeeded"
    elif active > 0:
        phase, message = Phase.SCHEDULED, f"{active} pods created, none running yet"
    else:
        phase, message = Phase.SCHEDULED, "the member has not started the pods yet"
    end = status.get("completionTime")
    if end is None and failure is not None:
        end = failure.get("lastTransitionTime")
    return Mirrored(
        phase=phase,
        active=active,
        succeeded=succeeded,
        failed=failed,
        start_time=status.get("startTime"),
        completion_time=end,
        message=message,
    )


# A child hub's phases that are not yet a run: for the parent the copy exists and waits.
_WAITING = (None, Phase.PENDING.value, "Deferred")


def mirror_computejob(cluster: str, job: dict[str, Any]) -> Mirrored:
    """The phase and counts of a ComputeJob on a child hub (``cluster``), as its status says."""
    status = job.get("status") or {}
    phase_raw = status.get("phase")
    said = str(status.get("message") or "")
    if phase_raw in _WAITING:
        phase = Phase.SCHEDULED
        message = f"hub {cluster}: {phase_raw or 'not placed yet'}" + (f": {said}" if said else "")
    else:
        phase = Phase(phase_raw)
        message = f"hub {cluster}: {said}" if said else f"hub {cluster}: {phase.value}"
    return Mirrored(
        phase=phase,
        active=int(status.get("active") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        message=message,
    )


def _version(raw: Any) -> int:
    """resourceVersions are etcd revisions in practice; ordering them drops stale answers."""
    try:
        return int(str(raw))
    except ValueError:
        return 0


def copy_of(cluster: str, job: dict[str, Any], via: str = "") -> Copy:
    """The compact view of a member Job, or of a child hub's ComputeJob, that the state machine
    reads. ``via`` is this hub's name: the copy's ``path`` starts with it (none when empty)."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    child = job.get("kind") == "ComputeJob"
    seen = mirror_computejob(cluster, job) if child else mirror(job)
    further = [str(p) for p in (job.get("status") or {}).get("path") or []] if child else []
    path = (via, *(further or [cluster])) if via else ()
    try:
        attempt = int((meta.get("labels") or {}).get(LABEL_ATTEMPT) or 1)
    except ValueError:
        attempt = 1
    return Copy(
        cluster=cluster,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        attempt=attempt,
        phase=seen.phase.value,
        active=seen.active,
        succeeded=seen.succeeded,
        failed=seen.failed,
        start_time=seen.start_time,
        completion_time=seen.completion_time,
        message=seen.message,
        suspended=bool(spec.get("suspend")),
        # A child hub's ComputeJob is its record of the run: nothing to clean up by TTL.
        ttl=child or spec.get("ttlSecondsAfterFinished") is not None,
        source=str((meta.get("annotations") or {}).get(ANN_SOURCE) or ""),
        path=path,
        version=_version(meta.get("resourceVersion")),
    )
