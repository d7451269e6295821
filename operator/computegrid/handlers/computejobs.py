"""ComputeJob lifecycle: place, dispatch, mirror, reschedule on member loss, delete.

Each ``handle_*`` is called by a thin Kopf wrapper in ``operator.py``. One reconcile function
serves both the create handler (the fast path, so the first placement does not wait for a
tick) and the per-job timer (retries, mirroring, member loss); a per-uid lock and the
runtime's memory of dispatched Jobs make the two safe to overlap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from computegrid.api import GROUP, ComputeJob, Phase
from computegrid.dispatch import (
    LABEL_MANAGED_BY,
    MANAGER,
    Remote,
    build_job_spec,
    create_or_adopt,
    delete_remote,
    mirror,
)
from computegrid.fleet import condition, merge_conditions, now_rfc3339, parse_rfc3339
from computegrid.handlers import metrics
from computegrid.handlers.placement import (
    InvalidJob,
    decide,
    decision_message,
    diagnosis_message,
    parse_job,
    placement_status,
    to_request,
)
from computegrid.handlers.runtime import Runtime
from computegrid.scheduling import Decision, JobRequest

FINISHED = (Phase.SUCCEEDED.value, Phase.FAILED.value)
log = logging.getLogger("computegrid.jobs")


def _uid(body: Any) -> str:
    return str(body["metadata"]["uid"])


def _conditions(patch: Any, status: dict[str, Any], *updates: dict[str, Any]) -> None:
    current = patch.status.get("conditions") or status.get("conditions")
    patch.status["conditions"] = merge_conditions(current, *updates)


def _attempt_key(rt: Runtime, body: Any) -> tuple[Any, ...]:
    """What a failed placement depended on: the fleet, the spec and our annotations.

    Kopf's own annotations are left out: they change as it records progress, which would
    turn a Pending job's retry into a loop.
    """
    meta = body["metadata"]
    ours = sorted((k, v) for k, v in (meta.get("annotations") or {}).items() if k.startswith(GROUP))
    return (rt.fleet.generation, meta.get("generation"), tuple(ours))


async def handle_create_computejob(rt: Runtime, body: Any, patch: Any, members: set[str]) -> None:
    await reconcile(rt, body, patch, members, force=True)


async def handle_sync_computejob(rt: Runtime, body: Any, patch: Any, members: set[str]) -> None:
    await reconcile(rt, body, patch, members, force=False)


async def reconcile(rt: Runtime, body: Any, patch: Any, members: set[str], *, force: bool) -> None:
    """One step towards the job running where it should; safe to repeat.

    ``members`` are the MemberClusters on the hub: placement waits until every one of them
    has been probed once, so a restarted operator neither misses a member's capacity nor a
    Job it already runs (adoption).
    """
    uid = _uid(body)
    if body["metadata"].get("deletionTimestamp"):
        return
    async with rt.lock(uid):
        status: dict[str, Any] = dict(body.get("status") or {})
        remote = rt.remote_of(uid, status)
        phase = status.get("phase")
        if remote is None:
            if force or rt.attempts.get(uid) != _attempt_key(rt, body):
                await _place(rt, body, patch, status, members, previous=None)
            return
        if phase in FINISHED:
            metrics.track_phase(uid, phase, remote.get("cluster"))
            return
        down = rt.fleet.down_for(str(remote.get("cluster")))
        if down is not None and down >= rt.options.grace_period:
            await _place(rt, body, patch, status, members, previous=remote, down_for=down)
            return
        _mirror(rt, body, patch, status, remote)


def _pending(
    rt: Runtime, body: Any, patch: Any, status: dict[str, Any], reason: str, message: str
) -> None:
    uid = _uid(body)
    now = now_rfc3339()
    patch.status["phase"] = Phase.PENDING.value
    patch.status["message"] = message[:1000]
    _conditions(
        patch,
        status,
        condition(status.get("conditions"), "Scheduled", "False", reason, message, now),
    )
    rt.attempts[uid] = _attempt_key(rt, body)
    metrics.track_phase(uid, Phase.PENDING.value, None)
    rt.emit(body, uid, "Warning", reason, message, once=True)


def _members_known(rt: Runtime, members: set[str]) -> bool:
    known = rt.fleet.members
    return all(n in known and (known[n].snapshot is not None or known[n].failures) for n in members)


async def _place(
    rt: Runtime,
    body: Any,
    patch: Any,
    status: dict[str, Any],
    members: set[str],
    *,
    previous: dict[str, Any] | None,
    down_for: float = 0.0,
) -> None:
    uid = _uid(body)
    try:
        cj = parse_job(body)
        request = to_request(cj)
    except InvalidJob as exc:
        metrics.DECISIONS.labels(outcome="invalid").inc()
        _pending(rt, body, patch, status, "InvalidSpec", str(exc))
        return
    if not _members_known(rt, members):
        raise kopf.TemporaryError("waiting for the first probe of every member", delay=1)
    if previous is None:
        adopted = _adoptable(rt, uid, status)
        if adopted is not None:
            _adopt(rt, body, patch, status, adopted)
            return
    outcome = decide(rt.scheduler, rt.fleet.state(rt.latency), request)
    metrics.SCHEDULING_SECONDS.observe(outcome.seconds)
    result = outcome.result
    if not isinstance(result, Decision):
        metrics.DECISIONS.labels(outcome="unschedulable").inc()
        message = diagnosis_message(result)
        if previous is not None:
            message = f"member {previous.get('cluster')} lost for {down_for:.0f}s; {message}"
            rt.remotes[uid] = None
            patch.status["remote"] = None
        _pending(rt, body, patch, status, "MemberLost" if previous else "Unschedulable", message)
        return
    await _dispatch(rt, body, patch, status, cj, request, result, previous, down_for)


async def _dispatch(
    rt: Runtime,
    body: Any,
    patch: Any,
    status: dict[str, Any],
    cj: ComputeJob,
    request: JobRequest,
    decision: Decision,
    previous: dict[str, Any] | None,
    down_for: float,
) -> None:
    uid = _uid(body)
    cluster = decision.cluster.name
    now = now_rfc3339()
    placement = placement_status(decision, now)
    job = build_job_spec(cj, cluster, origin_cluster=rt.options.hub_name)
    tenant = {LABEL_MANAGED_BY: MANAGER}
    rt.fleet.reserve(cluster, uid, request)  # before the await: concurrent placements see it
    try:
        remote: Remote = await rt.fleet.run(create_or_adopt, rt.fleet.client(cluster), job, tenant)
    except Exception as exc:  # reported on the job and retried on the next tick
        rt.fleet.members[cluster].reservations.pop(uid, None)
        rt.attempts.pop(uid, None)
        message = f"could not create the Job on {cluster}: {exc}"
        _conditions(
            patch,
            status,
            condition(
                status.get("conditions"), "Dispatched", "False", "DispatchFailed", message, now
            ),
        )
        rt.emit(body, uid, "Warning", "DispatchFailed", message, once=True)
        log.warning("%s/%s: %s", cj.metadata.namespace, cj.metadata.name, message)
        return
    rt.remotes[uid] = remote.ref()
    rt.attempts.pop(uid, None)
    reason = "Rescheduled" if previous else ("Adopted" if remote.adopted else "Created")
    conds = [
        condition(
            status.get("conditions"), "Scheduled", "True", "Placed", decision_message(decision), now
        ),
        condition(
            status.get("conditions"),
            "Dispatched",
            "True",
            reason,
            f"Job {remote.namespace}/{remote.name} on {cluster}",
            now,
        ),
    ]
    patch.status.update(
        {
            "phase": Phase.SCHEDULED.value,
            "message": decision_message(decision),
            "placement": placement,
            "remote": remote.ref(),
            "observedGeneration": body["metadata"].get("generation"),
        }
    )
    _conditions(patch, status, *conds)
    metrics.track_phase(uid, Phase.SCHEDULED.value, cluster)
    _, carbon, cost = decision.savings_per_hour()
    metrics.CARBON_SAVED.inc(max(carbon, 0.0))
    metrics.COST_SAVED.inc(max(cost, 0.0))
    if previous is not None:
        metrics.DECISIONS.labels(outcome="rescheduled").inc()
        metrics.RESCHEDULES.labels(from_cluster=str(previous.get("cluster"))).inc()
        patch.status["reschedules"] = int(status.get("reschedules") or 0) + 1
        rt.emit(
            body,
            uid,
            "Warning",
            "Rescheduled",
            f"member {previous.get('cluster')} lost for {down_for:.0f}s: "
            + decision_message(decision),
        )
        return
    metrics.DECISIONS.labels(outcome="scheduled").inc()
    created = parse_rfc3339(body["metadata"].get("creationTimestamp"))
    if created is not None:
        metrics.DISPATCH_SECONDS.observe(max((datetime.now(UTC) - created).total_seconds(), 0.0))
    rt.emit(body, uid, "Normal", "Scheduled", decision_message(decision))
    rt.emit(body, uid, "Normal", "Dispatched", conds[1]["message"] + f" ({reason.lower()})")


def _adoptable(rt: Runtime, uid: str, status: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A Job of this uid already on a Ready member (seen by its last probe), if any.

    The one ``status.remote`` names wins; otherwise the first by member name.
    """
    found = [
        (name, state.jobs[uid])
        for name, state in sorted(rt.fleet.members.items())
        if state.ready and uid in state.jobs
    ]
    wanted = (status.get("remote") or {}).get("cluster")
    found.sort(key=lambda item: item[0] != wanted)
    return found[0] if found else None


def _adopt(
    rt: Runtime, body: Any, patch: Any, status: dict[str, Any], found: tuple[str, dict[str, Any]]
) -> None:
    uid = _uid(body)
    cluster, job = found
    meta = job.get("metadata") or {}
    ref = {
        "cluster": cluster,
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    rt.remotes[uid] = ref
    now = now_rfc3339()
    message = f"Job {ref['namespace']}/{ref['name']} already on {cluster}: adopted"
    patch.status["remote"] = ref
    _conditions(
        patch,
        status,
        condition(status.get("conditions"), "Dispatched", "True", "Adopted", message, now),
    )
    rt.emit(body, uid, "Normal", "Adopted", message)
    _mirror(rt, body, patch, status, ref)


def _mirror(
    rt: Runtime, body: Any, patch: Any, status: dict[str, Any], remote: dict[str, Any]
) -> None:
    uid = _uid(body)
    cluster = str(remote.get("cluster"))
    job = rt.fleet.job(cluster, uid)
    if job is None:
        metrics.track_phase(uid, status.get("phase") or Phase.SCHEDULED.value, cluster)
        return
    seen = mirror(job)
    phase = seen.phase.value
    if phase == Phase.SCHEDULED.value and status.get("phase") == Phase.RUNNING.value:
        phase = Phase.RUNNING.value  # never step back
    update: dict[str, Any] = {
        "phase": phase,
        "active": seen.active,
        "succeeded": seen.succeeded,
        "failed": seen.failed,
        "message": seen.message,
    }
    if seen.start_time:
        update["startTime"] = seen.start_time
    if seen.completion_time:
        update["completionTime"] = seen.completion_time
    job_uid = (job.get("metadata") or {}).get("uid")
    if job_uid and remote.get("uid") != job_uid:
        update["remote"] = {**remote, "uid": job_uid}
        rt.remotes[uid] = update["remote"]
    changed = {k: v for k, v in update.items() if status.get(k) != v}
    metrics.track_phase(uid, phase, cluster)
    if not changed:
        return
    patch.status.update(changed)
    if "phase" in changed:
        now = now_rfc3339()
        if seen.finished:
            ok = seen.phase == Phase.SUCCEEDED
            _conditions(
                patch,
                status,
                condition(
                    status.get("conditions"),
                    "Completed",
                    "True" if ok else "False",
                    phase,
                    seen.message,
                    now,
                ),
            )
        rt.emit(
            body, uid, "Normal" if phase != Phase.FAILED.value else "Warning", phase, seen.message
        )


async def handle_update_computejob(rt: Runtime, body: Any, patch: Any, diff: Any) -> None:
    """Spec edits: applied while Pending; after dispatch, refused with a condition and Event."""
    uid = _uid(body)
    status: dict[str, Any] = dict(body.get("status") or {})
    remote = rt.remote_of(uid, status)
    if remote is None:
        rt.attempts.pop(uid, None)  # the next tick places the new spec
        return
    fields = sorted({".".join(str(p) for p in d[1]) or "spec" for d in diff})
    message = (
        f"{', '.join(fields)} changed after dispatch to {remote.get('cluster')}: not applied "
        f"(the Job runs generation {status.get('observedGeneration')}); delete and re-create "
        "the ComputeJob to change it"
    )
    _conditions(
        patch,
        status,
        condition(
            status.get("conditions"),
            "SpecApplied",
            "False",
            "ImmutableAfterDispatch",
            message,
            now_rfc3339(),
        ),
    )
    rt.emit(body, uid, "Warning", "SpecChangeRejected", message)


async def handle_delete_computejob(rt: Runtime, body: Any, retry: int) -> None:
    """Delete every copy of the Job; an unreachable member is given up on after a bound."""
    uid = _uid(body)
    status: dict[str, Any] = dict(body.get("status") or {})
    targets: dict[tuple[str, str, str], None] = {}
    remote = rt.remote_of(uid, status)
    if remote:
        targets[(str(remote["cluster"]), str(remote["namespace"]), str(remote["name"]))] = None
    for name, state in rt.fleet.members.items():
        job = state.jobs.get(uid)
        if job is not None:
            meta = job.get("metadata") or {}
            targets[(name, str(meta.get("namespace")), str(meta.get("name")))] = None
    unreachable: list[str] = []
    for cluster, namespace, name in targets:
        if not rt.fleet.is_ready(cluster):
            unreachable.append(cluster)
            continue
        try:
            await rt.fleet.run(delete_remote, rt.fleet.client(cluster), namespace, name)
        except Exception as exc:  # retried below, bounded
            log.warning("deleting %s/%s on %s: %s", namespace, name, cluster, exc)
            unreachable.append(cluster)
    delay = max(1.0, min(5.0, rt.options.delete_timeout / 10))
    if unreachable and (retry + 1) * delay < rt.options.delete_timeout:
        raise kopf.TemporaryError(f"member(s) {', '.join(unreachable)} unreachable", delay=delay)
    if unreachable:
        rt.emit(
            body,
            uid,
            "Warning",
            "OrphanedRemoteJob",
            f"gave up deleting the Job on {', '.join(unreachable)} after "
            f"{rt.options.delete_timeout:.0f}s; it is removed when the member returns",
        )
    rt.forget(uid)
    metrics.track_phase(uid, None, None)
