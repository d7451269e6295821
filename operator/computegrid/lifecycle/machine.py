"""The dispatch state machine, pure: (what the hub recorded, what the members show) → a step.

The hub is the source of truth. A ComputeJob's ``status`` records where its Job is meant to
be *before* the member is touched (``status.remote``: cluster, namespace, deterministic name,
attempt), so after any crash, restart or standby resume the operator reads the hub and
continues from there. This module decides, for one job at one moment, what to write to the
hub and what to do on the members; ``handlers/controller.py`` carries it out.

The states, read off the status (docs/operator.md draws them)::

    Pending ──placed──▶ Scheduled (recorded: remote without uid, Dispatched=False Dispatching)
                          │ member answers: Job created or found
                          ▼
                        Scheduled/Running (Dispatched=True) ──Job finished──▶ Succeeded|Failed
                          │ member unreachable > grace, failover allows
                          ▼
                        Pending (remote moved to staleCopies) ──placed──▶ Scheduled (attempt+1)

A stale copy is suspended, then deleted, the moment its member answers again; if it turns
out to have Succeeded meanwhile, the job is marked Succeeded from it instead of running again.

Rules of the steps:
- ``patch`` is a JSON merge patch of ``status``; when ``conditional`` it must be written with
  the resourceVersion the step was computed from (a 409 means another writer moved first:
  re-read and decide again), and always before any action runs.
- An action that touches a member is only ever emitted for a member whose Job watch is synced
  (absence there is definite) and Ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from computegrid.api import FailoverPolicy, Phase
from computegrid.api.conditions import condition, merge_conditions

FINISHED = (Phase.SUCCEEDED.value, Phase.FAILED.value)
Status = Mapping[str, Any]


class Health(StrEnum):
    """What the operator knows of a member right now."""

    READY = "Ready"  # probes pass and its Job watch is synced: absence is definite
    UNREACHABLE = "Unreachable"  # probes fail (down_for says since when)
    UNKNOWN = "Unknown"  # not probed or not synced yet (a restart, a resumed standby)
    REMOVED = "Removed"  # its MemberCluster was deleted from the hub


@dataclass(frozen=True)
class Copy:
    """A computegrid Job on a member, as that member's watch last showed it (compact)."""

    cluster: str
    namespace: str
    name: str
    uid: str  # the member Job's own uid
    attempt: int
    phase: str  # Scheduled, Running, Succeeded or Failed (dispatch.mirror)
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    start_time: str | None = None
    completion_time: str | None = None
    message: str = ""
    suspended: bool = False
    ttl: bool = False  # ttlSecondsAfterFinished already set
    source: str = ""  # "<namespace>/<name>" of its ComputeJob on the hub
    path: tuple[str, ...] = ()  # this hub, any child hubs, the cluster it runs on (issue 10)

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def ref(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class Member:
    """One member as seen for one job: its health and the job's copy there, if any."""

    health: Health
    down_for: float = 0.0
    copy: Copy | None = None
    foreign: bool = False  # a Job of the expected name exists there but is not this job's


UNKNOWN = Member(Health.UNKNOWN)


@dataclass(frozen=True)
class Situation:
    status: Status
    generation: int
    failover: FailoverPolicy
    grace: float
    now: str
    member: Member = UNKNOWN  # the member status.remote names (UNKNOWN when none)
    stale: Mapping[str, Member] = field(default_factory=dict)  # by stale copy's cluster
    others: tuple[Copy, ...] = ()  # copies on Ready members that no record names
    spec_digest: Mapping[str, str] = field(default_factory=dict)  # per spec field, now


def spec_digest(spec: Mapping[str, Any]) -> dict[str, str]:
    """A short hash per top-level spec field: which fields changed since dispatch, by name."""
    import hashlib
    import json

    return {
        k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:12]
        for k, v in sorted(spec.items())
    }


class Do(StrEnum):
    PLACE = "Place"  # ask the placer for a cluster
    CREATE = "Create"  # create (or adopt on 409) the recorded Job on its member
    SET_TTL = "SetTTL"  # the result is on the hub: let the member clean the Job up
    SUSPEND = "Suspend"
    DELETE = "Delete"
    EVENT = "Event"


@dataclass(frozen=True)
class Action:
    do: Do
    cluster: str = ""
    namespace: str = ""
    name: str = ""
    attempt: int = 0
    kind: str = ""  # Event: Normal | Warning
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Step:
    patch: dict[str, Any] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    conditional: bool = False
    final: bool = False  # a refusal: retry only when the spec or the fleet changes

    def then(self, other: Step) -> Step:
        """This step followed by another (patches merged, the later wins)."""
        return Step(
            {**self.patch, **other.patch},
            self.actions + other.actions,
            self.conditional or other.conditional,
            self.final or other.final,
        )


def event(kind: str, reason: str, message: str) -> Action:
    return Action(Do.EVENT, kind=kind, reason=reason, message=message[:1000])


def started(status: Status) -> bool:
    """Did the job's pods ever run, as far as the hub knows?"""
    return bool(status.get("startTime")) or status.get("phase") in (
        Phase.RUNNING.value,
        *FINISHED,
    )


def _conditions(status: Status, now: str, *updates: tuple[str, str, str, str]) -> list[Any]:
    previous = status.get("conditions")
    made = [condition(previous, kind, st, reason, msg, now) for kind, st, reason, msg in updates]
    return merge_conditions(previous, *made)


def _find(status: Status, kind: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def _unchanged(status: Status, patch: Mapping[str, Any]) -> bool:
    return all(status.get(k) == v for k, v in patch.items())


# -- the step for a job the operator observes -----------------------------------------------


def step(s: Situation) -> Step:
    """What to do for one job now."""
    status = s.status
    fencing = _fence_stale(s)
    if fencing.conditional:  # a stale copy succeeded: that settles the job
        return fencing
    if status.get("phase") in FINISHED:
        return fencing.then(_finished(s))
    remote = status.get("remote")
    if not remote:
        attempts = int(status.get("attempts") or 0)
        newer = sorted((c for c in s.others if c.attempt > attempts), key=lambda c: c.cluster)
        if newer:  # a copy no record names yet (an older operator's): adopt, never duplicate
            return fencing.then(_adopt(s, newer[0]))
        return fencing.then(Step(actions=(Action(Do.PLACE),)))
    return fencing.then(_recorded(s, remote))


def _adopt(s: Situation, copy: Copy) -> Step:
    message = f"Job {copy.namespace}/{copy.name} already on {copy.cluster}: adopted"
    patch = {
        "phase": Phase.SCHEDULED.value,
        "message": message,
        "remote": copy.ref(),
        "attempts": copy.attempt,
        "observedGeneration": s.generation,
        "specDigest": dict(s.spec_digest),
        "conditions": _conditions(
            s.status,
            s.now,
            ("Scheduled", "True", "Adopted", message),
            ("Dispatched", "True", "Adopted", message),
        ),
    }
    return Step(patch, (event("Normal", "Adopted", message),), conditional=True)


def _finished(s: Situation) -> Step:
    copy = s.member.copy
    if s.member.health == Health.READY and copy is not None and copy.finished and not copy.ttl:
        return Step(actions=(Action(Do.SET_TTL, copy.cluster, copy.namespace, copy.name),))
    return Step()


def _recorded(s: Situation, remote: Mapping[str, Any]) -> Step:
    member = s.member
    if member.health == Health.UNKNOWN:
        return Step()
    if member.health == Health.REMOVED:
        return _lost(s, remote, "MemberRemoved", f"member {remote.get('cluster')} was removed")
    if member.health == Health.UNREACHABLE:
        if member.down_for < s.grace:
            return Step()
        return _lost(
            s,
            remote,
            "MemberLost",
            f"member {remote.get('cluster')} unreachable for {member.down_for:.0f}s",
        )
    if member.foreign:
        return refused(
            s.status,
            s.now,
            "NameConflict",
            f"a Job {remote.get('namespace')}/{remote.get('name')} on {remote.get('cluster')} "
            "exists and is not this ComputeJob's: not adopted",
        )
    if member.copy is None:
        if not _dispatched(s.status):
            return Step(
                actions=(
                    Action(
                        Do.CREATE,
                        str(remote.get("cluster")),
                        str(remote.get("namespace")),
                        str(remote.get("name")),
                        int(remote.get("attempt") or 1),
                    ),
                )
            )
        return _vanished(s, remote)
    return mirror_step(s.status, member.copy, s.now, s.generation, s.spec_digest)


def _dispatched(status: Status) -> bool:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Dispatched":
            return bool(cond.get("status") == "True")
    return False


def _lost(s: Situation, remote: Mapping[str, Any], reason: str, why: str) -> Step:
    """The recorded member is gone or unreachable past the grace period: move or wait."""
    policy = s.failover
    if policy == FailoverPolicy.NEVER or (
        policy == FailoverPolicy.IF_NOT_STARTED and started(s.status)
    ):
        if reason == "MemberRemoved":
            return failed(s.status, s.now, reason, f"{why}; failover {policy.value}: not moved")
        message = f"{why}; failover {policy.value}: waiting for it, not moved"
        patch = {
            "message": message,
            "conditions": _conditions(s.status, s.now, ("Dispatched", "True", "Waiting", message)),
        }
        if _unchanged(s.status, {"message": message}):
            return Step()
        return Step(patch, (event("Warning", reason, message),), conditional=True)
    return move(s.status, s.now, reason, f"{why}; failover {policy.value}: moving the job")


def move(status: Status, now: str, reason: str, message: str) -> Step:
    """Give up the recorded copy (fenced when its member answers) and place the job again."""
    remote = dict(status.get("remote") or {})
    stale = list(status.get("staleCopies") or [])
    if remote and not any(
        c.get("cluster") == remote.get("cluster") and c.get("name") == remote.get("name")
        for c in stale
    ):
        stale.append({k: remote.get(k) for k in ("cluster", "namespace", "name", "attempt")})
    patch = {
        "phase": Phase.PENDING.value,
        "message": message,
        "remote": None,
        "staleCopies": stale[-32:],
        "reschedules": int(status.get("reschedules") or 0) + 1,
        "active": None,
        "conditions": _conditions(status, now, ("Dispatched", "False", reason, message)),
    }
    return Step(patch, (event("Warning", reason, message), Action(Do.PLACE)), conditional=True)


def _vanished(s: Situation, remote: Mapping[str, Any]) -> Step:
    """The member answers, the Job was there and is not any more (an admin, a TTL, a restore)."""
    why = (
        f"Job {remote.get('namespace')}/{remote.get('name')} vanished from {remote.get('cluster')}"
    )
    policy = s.failover
    if policy == FailoverPolicy.NEVER or (
        policy == FailoverPolicy.IF_NOT_STARTED and started(s.status)
    ):
        return failed(s.status, s.now, "RemoteJobLost", f"{why}; failover {policy.value}")
    step_ = move(s.status, s.now, "RemoteJobLost", f"{why}; failover {policy.value}: placing again")
    patch = dict(step_.patch)
    patch["staleCopies"] = list(s.status.get("staleCopies") or [])  # nothing left to fence
    patch["reschedules"] = s.status.get("reschedules")
    return Step(patch, step_.actions, conditional=True)


def failed(status: Status, now: str, reason: str, message: str) -> Step:
    patch = {
        "phase": Phase.FAILED.value,
        "message": message,
        "conditions": _conditions(status, now, ("Completed", "False", reason, message)),
    }
    return Step(patch, (event("Warning", reason, message),), conditional=True)


def refused(status: Status, now: str, reason: str, message: str) -> Step:
    """A member refused the Job for good: back to Pending, not retried until something changes."""
    patch = {
        "phase": Phase.PENDING.value,
        "message": message,
        "remote": None,
        "conditions": _conditions(status, now, ("Dispatched", "False", reason, message)),
    }
    return Step(patch, (event("Warning", reason, message),), conditional=True, final=True)


# -- stale copies ---------------------------------------------------------------------------


def _fence_stale(s: Situation) -> Step:
    """Suspend and delete copies the job moved away from; adopt one that already succeeded."""
    stale = list(s.status.get("staleCopies") or [])
    if not stale and not s.others:
        return Step()
    keep: list[Mapping[str, Any]] = []
    actions: list[Action] = []
    for ref in stale:
        member = s.stale.get(str(ref.get("cluster")), UNKNOWN)
        if member.health == Health.REMOVED:
            continue  # its Jobs were withdrawn when it was unregistered
        if member.health != Health.READY:
            keep.append(ref)
            continue
        copy = member.copy
        if copy is None:
            continue  # gone: nothing left to fence
        if copy.phase == Phase.SUCCEEDED.value and s.status.get("phase") not in FINISHED:
            return _settled_by(s, copy, [r for r in stale if r is not ref])
        keep.append(ref)
        if not copy.suspended and not copy.finished:
            actions.append(Action(Do.SUSPEND, copy.cluster, copy.namespace, copy.name))
        actions.append(Action(Do.DELETE, copy.cluster, copy.namespace, copy.name))
    recorded = (s.status.get("remote") or {}).get("cluster")
    attempts = int(s.status.get("attempts") or 0)
    strays = [c for c in s.others if c.attempt <= attempts and c.cluster != recorded]
    for copy in strays:  # a copy of this job that no record names: fence it
        if not copy.suspended and not copy.finished:
            actions.append(Action(Do.SUSPEND, copy.cluster, copy.namespace, copy.name))
        actions.append(Action(Do.DELETE, copy.cluster, copy.namespace, copy.name))
    patch: dict[str, Any] = {}
    if len(keep) != len(stale):
        patch["staleCopies"] = keep
    return Step(patch, tuple(actions))


def _settled_by(s: Situation, copy: Copy, others: list[Mapping[str, Any]]) -> Step:
    """A copy the job moved away from finished successfully: take its result, fence the rest."""
    current = s.status.get("remote")
    if current:
        others = [*others, {k: current.get(k) for k in ("cluster", "namespace", "name", "attempt")}]
    message = f"the copy on {copy.cluster} succeeded while that member was unreachable: kept"
    patch = {
        "phase": Phase.SUCCEEDED.value,
        "message": message,
        "remote": copy.ref(),
        "staleCopies": others,
        "succeeded": copy.succeeded,
        "failed": copy.failed,
        "active": 0,
        "completionTime": copy.completion_time,
        "conditions": _conditions(
            s.status,
            s.now,
            ("Dispatched", "True", "Adopted", message),
            ("Completed", "True", Phase.SUCCEEDED.value, message),
        ),
    }
    return Step(patch, (event("Normal", "SucceededElsewhere", message),), conditional=True)


# -- steps the controller asks for directly -------------------------------------------------


def placed(
    status: Status,
    now: str,
    *,
    cluster: str,
    namespace: str,
    name: str,
    placement: Mapping[str, Any],
    message: str,
    generation: int,
    digest: Mapping[str, str] | None = None,
) -> Step:
    """Record a decision on the hub before the member is touched; then create."""
    attempt = int(status.get("attempts") or 0) + 1
    remote = {"cluster": cluster, "namespace": namespace, "name": name, "attempt": attempt}
    patch = {
        "phase": Phase.SCHEDULED.value,
        "message": message,
        "placement": dict(placement),
        "remote": remote,
        "attempts": attempt,
        "observedGeneration": generation,
        "specDigest": dict(digest or {}),
        "conditions": _conditions(
            status,
            now,
            ("Scheduled", "True", "Placed", message),
            ("Dispatched", "False", "Dispatching", f"creating Job {namespace}/{name} on {cluster}"),
        ),
    }
    create = Action(Do.CREATE, cluster, namespace, name, attempt)
    return Step(patch, (event("Normal", "Scheduled", message), create), conditional=True)


def pending(status: Status, now: str, reason: str, message: str) -> Step:
    """Not placed (unschedulable, invalid): written only when the reason or message changed."""
    patch = {
        "phase": Phase.PENDING.value,
        "message": message[:1000],
        "conditions": _conditions(status, now, ("Scheduled", "False", reason, message)),
    }
    old: Mapping[str, Any] = _find(status, "Scheduled")
    if (
        status.get("phase") == Phase.PENDING.value
        and status.get("message") == patch["message"]
        and old.get("reason") == reason
    ):
        return Step()
    return Step(patch, (event("Warning", reason, message),))


def mirror_step(
    status: Status, copy: Copy, now: str, generation: int, digest: Mapping[str, str]
) -> Step:
    """The recorded copy's progress onto the ComputeJob: only what changed."""
    phase = copy.phase
    if phase == Phase.SCHEDULED.value and status.get("phase") == Phase.RUNNING.value:
        phase = Phase.RUNNING.value  # never step back
    update: dict[str, Any] = {
        "phase": phase,
        "active": copy.active,
        "succeeded": copy.succeeded,
        "failed": copy.failed,
        "message": copy.message,
        "remote": {**dict(status.get("remote") or {}), **copy.ref()},
    }
    if copy.path:
        update["path"] = list(copy.path)
    if copy.start_time and phase != Phase.SCHEDULED.value:
        update["startTime"] = copy.start_time
    if copy.completion_time:
        update["completionTime"] = copy.completion_time
    changed = {k: v for k, v in update.items() if status.get(k) != v}
    updates: list[tuple[str, str, str, str]] = []
    if not _dispatched(status):
        updates.append(
            ("Dispatched", "True", "Created", f"Job {copy.namespace}/{copy.name} on {copy.cluster}")
        )
    actions: list[Action] = []
    if "phase" in changed and copy.finished:
        ok = phase == Phase.SUCCEEDED.value
        updates.append(("Completed", "True" if ok else "False", phase, copy.message))
        actions.append(event("Normal" if ok else "Warning", phase, copy.message))
    observed = status.get("observedGeneration")
    if observed is not None and generation > int(observed):
        before = status.get("specDigest") or {}
        fields = sorted(k for k in before.keys() | digest.keys() if before.get(k) != digest.get(k))
        what = ", ".join(f"spec.{k}" for k in fields) or "spec"
        message = (
            f"{what} changed after dispatch to {copy.cluster}: not applied (the Job runs "
            f"generation {observed}); delete and re-create the ComputeJob to change it"
        )
        if _find(status, "SpecApplied").get("message") != message:
            updates.append(("SpecApplied", "False", "ImmutableAfterDispatch", message))
            actions.append(event("Warning", "SpecChangeRejected", message))
    if updates:
        changed["conditions"] = _conditions(status, now, *updates)
    if not changed:
        return Step()
    return Step(changed, tuple(actions))
