"""Member Job status → ComputeJob status (pure).

The operator polls rather than watches: each member probe lists the computegrid Jobs of that
member once per interval (one request per member, whatever the number of ComputeJobs), and
the ComputeJob timers read that cache. A watch per member would be fresher but adds a
long-lived stream per member with its own reconnect and freeze handling (the failure modes
Kopf itself guards against on the hub); for batch jobs that run minutes, an interval of a
few seconds is fresh enough, and a lost member simply stops answering the same list call
that decides its health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from computegrid.api import Phase


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
    elif active > 0 or succeeded > 0 or status.get("startTime"):
        phase, message = Phase.RUNNING, f"{active} pods active, {succeeded} succeeded"
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
