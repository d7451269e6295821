"""The dispatch state machine, pure: (what the hub recorded, what the members show) → a step.

The hub is the source of truth. A ComputeJob's ``status`` records where its Job is meant to
be *before* the member is touched (``status.remote``: cluster, namespace, deterministic name,
attempt), so after any crash, restart or standby resume the operator reads the hub and
continues from there. This module decides, for one job at one moment, what to write to the
hub and what to do on the members; ``handlers/controller.py`` carries it out.

The states, read off the status (docs/operator.md draws them)::

    Pending ──placed──▶ Scheduled (recorded: remote without uid, Dispatched=False Dispatching)
       │                  │ member answers: Job created or found
       │ planned later    ▼
       └──────────▶ Deferred (recorded: remote + deferral; Job created suspended)
                          │ clock ≥ deferral.start: hub first, then unsuspend
                          ▼
                        Scheduled/Running (Dispatched=True) ──Job finished──▶ Succeeded|Failed
                          │ member unreachable > grace, failover allows
                          ▼
                        Pending (remote moved to staleCopies) ──placed──▶ Scheduled (attempt+1)

A Deferred job may be re-planned before its start (``replanned``: a new start, or a new member
whose old suspended copy becomes a stale copy); the placer bounds how often. At its start it is
released only if its planned member is Ready and still has room for it (``Situation.room``,
from the operator's FleetState); otherwise it asks for a re-plan, or, with the re-plans used
up, waits for room on that member, saying why in its status (``_blocked``).

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

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from computegrid.api import FailoverPolicy, Phase
from computegrid.api.conditions import condition, merge_conditions
from computegrid.api.timing import parse_time

FINISHED = (Phase.SUCCEEDED.value, Phase.FAILED.value)
UNSCHEDULABLE = "Unschedulable"  # the reason of a job no member can take now
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
    version: int = 0  # the member's resourceVersion: an older answer never replaces a newer one

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
class Room:
    """Can the planned member take a Deferred job now? (the operator's FleetState says)"""

    fits: bool = True
    why: str = ""  # when it cannot, in words: "gansu-qingyang is not Ready (...)"


ROOM = Room()


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
    clock_s: float = 0.0  # the planning clock (Unix seconds): when a Deferred job is due
    room: Room = ROOM  # the planned member's room for a due Deferred job (asked only then)
    max_replans: int = 3  # --max-replans: how often a Deferred job's plan may change


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
    RESUME = "Resume"  # unsuspend the recorded Job: a Deferred job's start time came
    REPLAN = "Replan"  # ask the placer for a new plan: a Deferred job's member cannot take it
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
    suspend: bool = False  # Create: the Job is created suspended (a Deferred job)


@dataclass(frozen=True)
class Step:
    patch: dict[str, Any] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    conditional: bool = False
    final: bool = False  # a refusal: retry only when the spec or the fleet changes
    wake_at: float | None = None  # look at the job again at this planning-clock time
    # A second, later look besides wake_at: a job waiting for room on its member (kept due by
    # wake_at, so every fleet change looks again) must also be looked at when its latest start
    # comes, on a fleet where nothing changes.
    recheck_at: float | None = None
    # Only a copy's progress inside its phase (pod counts, Dispatched=True): its write may wait
    # for the next phase change. Anything else (a phase, a stale copy's record, a Warning
    # condition) is news to write at once.
    progress: bool = False

    def then(self, other: Step) -> Step:
        """This step followed by another (patches merged, the later wins)."""
        return Step(
            {**self.patch, **other.patch},
            self.actions + other.actions,
            self.conditional or other.conditional,
            self.final or other.final,
            _earliest(self.wake_at, other.wake_at),
            _earliest(self.recheck_at, other.recheck_at),
            (self.progress or not self.patch) and (other.progress or not other.patch),
        )


def _earliest(a: float | None, b: float | None) -> float | None:
    times = [t for t in (a, b) if t is not None]
    return min(times) if times else None


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
    deferral = s.status.get("deferral") or {}
    holding = s.status.get("phase") == Phase.DEFERRED.value and bool(deferral)
    if member.health == Health.UNREACHABLE:
        if holding and _due(s, deferral) and _replans_left(s, deferral):
            # Its copy is suspended and never released (the hub says so): safe to plan it
            # elsewhere now rather than wait out the grace period past its start.
            why = s.room.why or f"{remote.get('cluster')} is unreachable"
            return _blocked(s, deferral, why)
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
    if holding:
        return _deferred(s, remote, deferral)
    if member.copy is None:
        if not _dispatched(s.status):
            return Step(actions=(_create(remote),))
        return _vanished(s, remote)
    copy = member.copy
    resume = Step()
    if deferral.get("started") and copy.suspended and not copy.finished:
        # Released on the hub, not yet on the member (a crash in between): unsuspend now.
        resume = Step(actions=(Action(Do.RESUME, copy.cluster, copy.namespace, copy.name),))
    return resume.then(mirror_step(s.status, copy, s.now, s.generation, s.spec_digest))


def _create(remote: Mapping[str, Any], *, suspend: bool = False) -> Action:
    return Action(
        Do.CREATE,
        str(remote.get("cluster")),
        str(remote.get("namespace")),
        str(remote.get("name")),
        int(remote.get("attempt") or 1),
        suspend=suspend,
    )


# -- Deferred: held suspended on its member until the planned start -------------------------


def _deferred(s: Situation, remote: Mapping[str, Any], deferral: Mapping[str, Any]) -> Step:
    """A Deferred job on a member that answers: create it suspended, release it when due."""
    start_s = seconds_of(deferral.get("start"))
    copy = s.member.copy
    if s.clock_s >= start_s:
        if not s.room.fits:
            return _blocked(s, deferral, s.room.why)
        return _release(s, deferral, copy)
    if copy is None:
        if _dispatched(s.status):
            return _vanished(s, remote)
        return Step(actions=(_create(remote, suspend=True),), wake_at=start_s)
    if _dispatched(s.status):
        return Step(wake_at=start_s)
    until = deferral.get("start")
    message = f"Job {copy.namespace}/{copy.name} on {copy.cluster}, suspended until {until}"
    created = ("Dispatched", "True", "CreatedSuspended", message)
    patch = {
        "remote": {**dict(s.status.get("remote") or {}), **copy.ref()},
        "conditions": _conditions(s.status, s.now, created),
    }
    return Step(patch, wake_at=start_s)


def _due(s: Situation, deferral: Mapping[str, Any]) -> bool:
    return s.clock_s >= seconds_of(deferral.get("start"))


def _replans_left(s: Situation, deferral: Mapping[str, Any]) -> bool:
    return int(deferral.get("replans") or 0) < s.max_replans


def past_latest_start(deferral: Mapping[str, Any], clock_s: float) -> bool:
    """Whether a Deferred job can wait no longer: its latest start (deadline less its run)
    has come. Such a job is planned again even with its re-plans used up, to start now."""
    latest = deferral.get("latestStart")
    return latest is not None and clock_s >= seconds_of(latest)


def _blocked(s: Situation, deferral: Mapping[str, Any], why: str) -> Step:
    """Due, and its planned member cannot take it now: never released blindly.

    With re-plans left, the placer is asked for a new plan (on another member, or later);
    with none left, the job waits for room on its planned member until its latest start, and
    from then on the placer is asked again, to start it on any member with room now (the
    job can no longer wait for its own: the issue's "a deadline that can no longer be met
    makes the job start at once"). Either way it stays
    Deferred, the status says why (written once, not per look), and it is looked at again
    when the fleet changes (the placer queues due Deferred jobs on a new fleet generation).
    """
    cluster = deferral.get("cluster")
    start = deferral.get("start")
    replans = int(deferral.get("replans") or 0)
    recheck: float | None = None
    if _replans_left(s, deferral):
        reason = "NoRoomAtStart"
        message = (
            f"not released at {start} on {cluster}: {why}; asking for a new plan "
            f"(re-plan {replans + 1} of at most {s.max_replans})"
        )
        asks: tuple[Action, ...] = (Action(Do.REPLAN, reason=reason, message=why),)
    elif past_latest_start(deferral, s.clock_s):
        reason = "NoRoomAtLatestStart"
        message = (
            f"not released at {start} on {cluster}: {why}; its {s.max_replans} re-plans are "
            f"used up and its latest start {deferral.get('latestStart')} has come: asking "
            "to start it on any member with room now"
        )
        asks = (Action(Do.REPLAN, reason=reason, message=why),)
    else:
        reason = "WaitingForRoom"
        latest = deferral.get("latestStart")
        until = f" until its latest start {latest}" if latest else ""
        message = (
            f"not released at {start} on {cluster}: {why}; its {s.max_replans} re-plans are "
            f"used up: waiting for room there{until}"
        )
        asks = ()
        recheck = seconds_of(latest) if latest else None
    message = message[:1000]
    # wake_at (its start, passed): the controller keeps it among the due jobs, which the
    # placer queues again on every fleet change, also after a restart.
    due = seconds_of(start)
    if _unchanged(s.status, {"message": message}):
        return Step(actions=asks, wake_at=due, recheck_at=recheck)
    patch = {
        "message": message,
        "conditions": _conditions(s.status, s.now, ("Deferred", "True", reason, message)),
    }
    return Step(
        patch,
        (event("Warning", reason, message), *asks),
        conditional=True,
        wake_at=due,
        recheck_at=recheck,
    )


def _release(s: Situation, deferral: Mapping[str, Any], copy: Copy | None) -> Step:
    """The planned start came: recorded on the hub first, then the member Job unsuspended.

    A start after ``deferral.latestStart`` (the operator was down, or the plan was late)
    still starts at once, with the ``OnTime`` condition False and a Warning saying why.
    """
    when = rfc3339_of(s.clock_s)
    latest = deferral.get("latestStart")
    late = latest is not None and s.clock_s > seconds_of(latest) + 1.0
    message = f"started at {when} as planned (on {deferral.get('cluster')})"
    updates = [("Deferred", "False", "Started", message)]
    actions: list[Action] = []
    if late:
        message = (
            f"started at {when}, after the latest start {latest} (deadline − expectedDuration): "
            "the deadline may be missed; starting at once rather than not at all"
        )
        updates.append(("OnTime", "False", "LateStart", message))
        actions.append(event("Warning", "LateStart", message))
    elif latest is not None:
        updates.append(("OnTime", "True", "StartedInWindow", f"started by {latest}"))
    actions.append(event("Normal", "Started", message))
    if copy is not None and copy.suspended:
        actions.append(Action(Do.RESUME, copy.cluster, copy.namespace, copy.name))
    patch = {
        "phase": Phase.SCHEDULED.value,
        "message": message,
        "deferral": {**dict(deferral), "started": when},
        "conditions": _conditions(s.status, s.now, *updates),
    }
    return Step(patch, tuple(actions), conditional=True)


def released(step: Step) -> bool:
    """Does this step release a Deferred job (its capacity is taken from now on)?"""
    deferral = step.patch.get("deferral") or {}
    return bool(deferral.get("started")) and step.patch.get("phase") == Phase.SCHEDULED.value


def rfc3339_of(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_of(text: Any) -> float:
    """An RFC 3339 time in Unix seconds; 0 (due at once) if it cannot be read."""
    try:
        return parse_time(str(text)).timestamp()
    except ValueError:
        return 0.0


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
    deferral: Mapping[str, Any] | None = None,
    late: str = "",
) -> Step:
    """Record a decision on the hub before the member is touched; then create.

    With ``deferral`` (a planned start later than now) the job is Deferred and its Job is
    created suspended; ``late`` says why a windowed job starts after its latest start.
    """
    attempt = int(status.get("attempts") or 0) + 1
    remote = {"cluster": cluster, "namespace": namespace, "name": name, "attempt": attempt}
    updates = [
        ("Scheduled", "True", "Placed", message),
        ("Dispatched", "False", "Dispatching", f"creating Job {namespace}/{name} on {cluster}"),
    ]
    actions = [event("Normal", "Scheduled", message)]
    if deferral:
        why = "; ".join(deferral.get("reasons") or ()) or f"start at {deferral.get('start')}"
        updates.append(("Deferred", "True", "Planned", why))
        actions = [event("Normal", "Deferred", f"{message}; {why}")]
    if late:
        updates.append(("OnTime", "False", "LateStart", late))
        actions.append(event("Warning", "LateStart", late))
    patch = {
        "phase": Phase.DEFERRED.value if deferral else Phase.SCHEDULED.value,
        "message": message,
        "placement": dict(placement),
        "remote": remote,
        "attempts": attempt,
        "observedGeneration": generation,
        "specDigest": dict(digest or {}),
        "deferral": dict(deferral) if deferral else None,
        "conditions": _conditions(status, now, *updates),
    }
    create = Action(Do.CREATE, cluster, namespace, name, attempt, suspend=bool(deferral))
    wake = seconds_of(deferral.get("start")) if deferral else None
    return Step(patch, (*actions, create), conditional=True, wake_at=wake)


def replanned(
    status: Status,
    now: str,
    *,
    cluster: str,
    deferral: Mapping[str, Any],
    placement: Mapping[str, Any],
    message: str,
    joint: bool = False,
) -> Step:
    """A Deferred job's plan changed (a new forecast, its member lost, no room at its start, or
    the hourly joint plan, ``joint``): recorded, counted; ``message`` says what prompted it.

    Its own re-plans count in ``replans`` (bounded by --max-replans), the joint plan's moves in
    ``jointMoves`` (one a round at most), so the joint plan never uses up the re-plans a lost
    member or a start without room needs. The same member: only the start moves. Another
    member: the suspended copy becomes a stale copy (fenced: deleted when its member answers)
    and a new attempt is created suspended there.
    """
    old = dict(status.get("deferral") or {})
    remote = dict(status.get("remote") or {})
    counts = {k: int(old.get(k) or 0) for k in ("replans", "jointMoves")}
    count = "jointMoves" if joint else "replans"
    counts[count] += 1
    n = counts[count]
    new = {**dict(deferral), **{k: v for k, v in counts.items() if v or k == "replans"}}
    why = f" ({message})" if message else ""
    what = f"moved by the joint plan ({n})" if joint else f"re-planned ({n})"
    text = (
        f"{what}{why}: start {new.get('start')} on {cluster}, was "
        f"{old.get('start')} on {old.get('cluster')}; " + "; ".join(new.get("reasons") or ())
    )
    patch: dict[str, Any] = {
        "message": text[:1000],
        "placement": dict(placement),
        "deferral": new,
    }
    updates = [("Deferred", "True", "Replanned", text)]
    actions = [event("Normal", "Replanned", text)]
    if cluster != remote.get("cluster"):
        stale = list(status.get("staleCopies") or [])
        stale.append({k: remote.get(k) for k in ("cluster", "namespace", "name", "attempt")})
        attempt = int(status.get("attempts") or 0) + 1
        moved = {k: remote.get(k) for k in ("namespace", "name")}
        patch["remote"] = {"cluster": cluster, **moved, "attempt": attempt}
        patch["attempts"] = attempt
        patch["staleCopies"] = stale[-32:]
        updates.append(("Dispatched", "False", "Dispatching", f"moving to {cluster} (re-planned)"))
        actions.append(_create(patch["remote"], suspend=True))
    patch["conditions"] = _conditions(status, now, *updates)
    return Step(patch, tuple(actions), conditional=True, wake_at=seconds_of(new.get("start")))


def pending(status: Status, now: str, reason: str, message: str) -> Step:
    """Not placed (unschedulable, invalid): written only when the reason or message changed.

    A new reason is news (a Warning Event, written at once), and so is a new message for any
    reason but Unschedulable (an invalid spec edited into another invalid one). A new
    Unschedulable diagnosis (the free room it quotes moved) is progress: no Event, and its
    write may wait for the next: a job refused for room is judged again each time room comes
    back, which on a busy fleet is many times a minute."""
    patch = {
        "phase": Phase.PENDING.value,
        "message": message[:1000],
        "conditions": _conditions(status, now, ("Scheduled", "False", reason, message)),
    }
    old: Mapping[str, Any] = _find(status, "Scheduled")
    same_reason = status.get("phase") == Phase.PENDING.value and old.get("reason") == reason
    if same_reason and status.get("message") == patch["message"]:
        return Step()
    if same_reason and reason == UNSCHEDULABLE:
        return Step(patch, progress=True)
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
        if not ok:  # a success is in the phase and Completed=True: an Event is one more write
            actions.append(event("Warning", phase, copy.message))
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
    progress = "phase" not in changed and all(kind == "Dispatched" for kind, *_ in updates)
    if updates:
        changed["conditions"] = _conditions(status, now, *updates)
    if not changed:
        return Step()
    return Step(changed, tuple(actions), progress=progress)
