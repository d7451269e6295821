"""Probing a member: its Nodes and non-terminal Pods (paginated), into a snapshot and health.

Jobs are not probed any more: the member's Job watch keeps them. A few quick retries
(tenacity) absorb a blip; a member is NotReady only after ``threshold`` failed probes, so
one slow answer does not move anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import HTTPError

from computegrid.api import LABEL_JOB_UID
from computegrid.api.conditions import now_rfc3339
from computegrid.fleet.client import Body
from computegrid.fleet.federation import child_snapshots, hub_status, hub_summary, is_hub
from computegrid.fleet.registry import Fleet
from computegrid.fleet.rest import ApiException, status_message
from computegrid.fleet.snapshot import build_snapshot
from computegrid.fleet.status import failed_status, ready_status
from computegrid.scheduling import ClusterSnapshot

RETRIES = 2
T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """Worth retrying: the member did not answer, or answered 429/5xx."""
    if isinstance(exc, ApiException):
        return exc.status is None or exc.status == 429 or exc.status >= 500
    return isinstance(exc, HTTPError | ConnectionError | OSError | TimeoutError)


@dataclass(frozen=True)
class ProbeResult:
    status: dict[str, Any]  # the MemberCluster's new .status
    ready: bool
    changed: bool  # readiness or free capacity moved: Pending jobs deserve another try
    seconds: float
    counted: frozenset[str] = frozenset()  # ComputeJob uids whose pods the probe saw
    error: str | None = None


def _retried(call: Callable[[], T]) -> T:
    """``call`` with a few quick retries of what is transient."""
    for attempt in Retrying(
        stop=stop_after_attempt(1 + RETRIES),
        wait=wait_exponential_jitter(multiplier=0.2, max=2),
        retry=retry_if_exception(transient),
        reraise=True,
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # pragma: no cover


def _collect(fleet: Fleet, name: str) -> tuple[list[Body], list[Body]]:
    def both() -> tuple[list[Body], list[Body]]:
        member = fleet.client(name)
        return member.list_nodes(), member.list_pods()

    return _retried(both)


def _collect_hub(fleet: Fleet, name: str) -> list[Body]:
    """A Hub member's capacity is its own MemberClusters' statuses (fleet.federation)."""
    return _retried(lambda: list(fleet.client(name).list_member_clusters()))  # type: ignore[attr-defined]


async def probe(
    fleet: Fleet, name: str, previous_conditions: list[Mapping[str, Any]] | None
) -> ProbeResult:
    """Probe one registered member, update its state, and return its new ``.status`` body."""
    state = fleet.members[name]
    started = time.monotonic()
    now = now_rfc3339()
    hub = is_hub(state.spec)
    try:
        if hub:
            nodes, pods = await fleet.run(_collect_hub, fleet, name), []
        else:
            nodes, pods = await fleet.run(_collect, fleet, name)
    except Exception as exc:  # any failure is a failed probe, reported in the condition
        fleet.drop_client(name)
        state.failures += 1
        state.probed = True
        error = status_message(exc)
        was_ready = state.ready
        if state.failures >= fleet.threshold:
            state.ready = False
            state.not_ready_reason = f"ProbeFailed: {error}"
            if state.down_since is None:
                state.down_since = time.monotonic()
        changed = was_ready != state.ready
        if changed:
            fleet.generation += 1
        body = failed_status(previous_conditions, state.failures, fleet.threshold, error, now)
        return ProbeResult(body, state.ready, changed, time.monotonic() - started, error=error)
    if name not in fleet.members:  # unregistered while we waited
        return ProbeResult({}, False, False, time.monotonic() - started)
    if hub:
        return _probed_hub(fleet, name, nodes, previous_conditions, now, started)
    snapshot = build_snapshot(name, state.spec, nodes, pods, state.labels)
    changed = (
        (not state.ready) or state.snapshot is None or _free(state.snapshot) != _free(snapshot)
    )
    counted = frozenset(
        str(uid)
        for p in pods
        if (uid := ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_JOB_UID))
    )
    state.snapshot = snapshot
    state.ready, state.failures, state.down_since, state.probed = True, 0, None, True
    state.not_ready_reason = ""
    if changed:
        fleet.generation += 1
    body = ready_status(snapshot, previous_conditions, now)
    return ProbeResult(body, True, changed, time.monotonic() - started, counted)


def _probed_hub(
    fleet: Fleet,
    name: str,
    members: list[Body],
    previous: list[Mapping[str, Any]] | None,
    now: str,
    started: float,
) -> ProbeResult:
    """A Hub member answered with its MemberClusters: expand it into its child clusters."""
    state = fleet.members[name]
    children, _problems = child_snapshots(name, members)
    seen = tuple((c.name, c.ready, _free(c)) for c in children)
    before = tuple((c.name, c.ready, _free(c)) for c in state.children)
    changed = (not state.ready) or seen != before
    state.children = tuple(children)
    state.snapshot = hub_summary(name, state.spec, state.labels, children)
    state.ready, state.failures, state.down_since, state.probed = True, 0, None, True
    state.not_ready_reason = ""
    if changed:
        fleet.generation += 1
    body = hub_status(state.snapshot, children, previous, now)
    return ProbeResult(body, True, changed, time.monotonic() - started)


def _free(snapshot: ClusterSnapshot) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    return tuple(
        (n.name, tuple(sorted((r, round(n.free(r), 3)) for r in n.allocatable)))
        for n in snapshot.nodes
    )
