"""MemberCluster probes: status, readiness Events, and removal of stale or orphaned Jobs.

A stale copy is a Job whose ComputeJob now points at another member (it was rescheduled
while this member was lost); an orphan is a Job whose ComputeJob is gone (deleted while this
member was unreachable). Both are removed when the member answers again, so a job never runs
twice once the member is reachable. Young Jobs are left alone: the hub may not have recorded
a fresh dispatch yet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from computegrid.api import MemberClusterSpec
from computegrid.dispatch import delete_remote
from computegrid.fleet import (
    condition,
    find_condition,
    merge_conditions,
    now_rfc3339,
    parse_rfc3339,
)
from computegrid.handlers import metrics
from computegrid.handlers.runtime import MISSING, Runtime

ORPHAN_AGE_S = 60.0
log = logging.getLogger("computegrid.members")


async def handle_probe_membercluster(
    rt: Runtime, body: Any, name: str, patch: Any, index: Mapping[str, Any]
) -> None:
    status: dict[str, Any] = dict(body.get("status") or {})
    previous = status.get("conditions")
    try:
        spec = MemberClusterSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        message = f"invalid spec: {exc.errors()[0]['msg']}"
        ready = condition(previous, "Ready", "False", "InvalidSpec", message, now_rfc3339())
        patch.status["conditions"] = merge_conditions(previous, ready)
        return
    labels = dict((body.get("metadata") or {}).get("labels") or {})
    rt.fleet.register(name, spec, labels)
    result = await rt.fleet.probe(name, previous)
    patch.status.update(result.status)
    metrics.PROBE_SECONDS.labels(cluster=name).observe(result.seconds)
    metrics.MEMBER_READY.labels(cluster=name).set(1 if result.ready else 0)
    was = (find_condition(previous, "Ready") or {}).get("status")
    now_ready = "True" if result.ready else ("False" if "conditions" in result.status else was)
    if was != now_ready and now_ready is not None:
        reason = "MemberReady" if result.ready else "MemberNotReady"
        message = "probe succeeded" if result.ready else f"probes failing: {result.error}"
        rt.emit(body, f"mc/{name}", "Normal" if result.ready else "Warning", reason, message)
    if result.ready:
        await _collect_stale(rt, name, index)


def _current_cluster(rt: Runtime, uid: str, index: Mapping[str, Any]) -> Any:
    """Where the ComputeJob says its Job lives: a name, None (nowhere yet), or MISSING."""
    known = rt.remotes.get(uid, MISSING)
    if known is not MISSING:
        return (known or {}).get("cluster")
    if uid not in index:
        return MISSING
    values = list(index[uid])
    return values[0] if values else None


def _watched(rt: Runtime, namespace: str) -> bool:
    namespaces = rt.options.namespace_list
    return not namespaces or namespace in namespaces


async def _collect_stale(rt: Runtime, name: str, index: Mapping[str, Any]) -> None:
    state = rt.fleet.members[name]
    now = datetime.now(UTC)
    for uid, job in list(state.jobs.items()):
        meta = job.get("metadata") or {}
        created = parse_rfc3339(meta.get("creationTimestamp"))
        age = (now - created).total_seconds() if created else 0.0
        current = _current_cluster(rt, uid, index)
        namespace = str(meta.get("namespace"))
        if current is MISSING:
            stale = age > ORPHAN_AGE_S and _watched(rt, namespace)
            why = "orphan (its ComputeJob is gone)"
        else:
            stale = current is not None and current != name
            why = f"stale copy (the job now runs on {current})"
        if not stale:
            continue
        try:
            await rt.fleet.run(delete_remote, rt.fleet.client(name), namespace, meta.get("name"))
            state.jobs.pop(uid, None)
            log.info("deleted %s Job %s/%s on %s", why, namespace, meta.get("name"), name)
        except Exception as exc:  # the next probe tries again
            log.warning(
                "could not delete Job %s/%s on %s: %s", namespace, meta.get("name"), name, exc
            )


async def handle_delete_membercluster(rt: Runtime, body: Any, name: str) -> None:
    """Unregister a member: take our Jobs off it first (bounded), then forget it, so that its
    ComputeJobs are rescheduled without a second copy running on a cluster we no longer see."""
    left = await rt.fleet.withdraw(name, rt.options.delete_timeout)
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        rt.emit(
            body,
            f"mc/{name}",
            "Warning",
            "OrphanedRemoteJobs",
            f"unregistered with computegrid Jobs left on the member: {shown}",
        )
        log.warning("member %s unregistered; Jobs left behind: %s", name, shown)
    rt.fleet.forget(name)
    metrics.MEMBER_READY.labels(cluster=name).set(0)
