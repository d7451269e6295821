"""One daemon per MemberCluster: probe it, follow its Jobs, write its status.

Why a Kopf daemon: Kopf stops every daemon when its peering pauses this replica, so a
standby neither probes nor watches members, and the dispatch state machine sees every
member as Unknown there (nothing moves, nothing is created). When the replica resumes, the
daemons start again, relist the members' Jobs, and the hub's ComputeJob watch re-lists: the
operator re-reads before acting.

A MemberCluster that cannot be used (a spec that fails validation, a location the latency
model does not know) gets ``Ready=False`` with the reason and is left out of placement; it
never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from computegrid.api import MemberClusterSpec
from computegrid.api.conditions import condition, find_condition, merge_conditions, now_rfc3339
from computegrid.fleet import JobWatch, probe
from computegrid.fleet.forecasts import MemberForecast, hub_or_member, member_forecast
from computegrid.handlers import metrics
from computegrid.handlers.runtime import Runtime

log = logging.getLogger("computegrid.members")


def member_problem(rt: Runtime, body: Mapping[str, Any]) -> tuple[MemberClusterSpec | None, str]:
    """The spec, or why this MemberCluster cannot be used (one line naming the field)."""
    try:
        spec = MemberClusterSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        return None, f"spec.{where}: {first['msg']}"
    if not rt.latency.knows(spec.location):
        return None, f"spec.location: {spec.location!r} is not a city the latency model knows"
    return spec, ""


async def run_member(rt: Runtime, name: str, body: Any, uid: str, stopped: Any) -> None:
    """Until Kopf stops the daemon (deletion, pause, exit): probe, follow, report."""
    fleet = rt.fleet
    conditions: list[Mapping[str, Any]] | None = list(
        (body.get("status") or {}).get("conditions") or []
    )
    try:
        while not stopped:
            spec, problem = member_problem(rt, body)
            if spec is None:
                conditions = await _refuse(rt, name, conditions, problem)
                await stopped.wait(rt.options.probe_interval)
                continue
            rt.placer.problems.discard(name)
            labels = dict((body.get("metadata") or {}).get("labels") or {})
            state = fleet.register(name, spec, labels)
            state.uid = uid
            if state.watch is None:
                state.watch = _start_watch(rt, name)
                log.info(
                    "following member %s: probes every %.0fs, Job watch",
                    name,
                    rt.options.probe_interval,
                )
            was = state.ready
            result = await probe(fleet, name, conditions)
            if name not in fleet.members:
                return
            rt.capacity.settle(name, result.counted)
            metrics.PROBE_SECONDS.labels(cluster=name).observe(result.seconds)
            metrics.MEMBER_READY.labels(cluster=name).set(1 if result.ready else 0)
            conditions = result.status.get("conditions") or conditions
            if result.ready:
                conditions = await _refresh_forecast(rt, name, conditions, result.status)
            # After the forecast: a restart's first placement waits for it (startgate.py).
            rt.placer.member_news(name, "probed")
            await _write_status(rt, name, result.status)
            if was != state.ready:
                _report(rt, name, state.ready, result.error)
                if state.ready and state.watch is not None:
                    state.watch.poke()
            rt.controller.member_changed(name, health=was != state.ready, capacity=result.changed)
            await stopped.wait(rt.options.probe_interval)
    finally:
        state_ = fleet.members.get(name)
        if state_ is not None and state_.watch is not None:
            state_.watch.stop()
            state_.watch = None
            state_.synced = False


async def _refresh_forecast(rt: Runtime, name: str, conditions: Any, status: dict[str, Any]) -> Any:
    """Every ``--forecast-interval``: the member's forecast into its status (and ours)."""
    state = rt.fleet.members.get(name)
    if state is None or state.snapshot is None:
        return conditions
    if state.forecast_at is not None and (
        time.monotonic() - state.forecast_at < rt.options.forecast_interval
    ):
        return conditions
    fleet = rt.fleet
    hub = fleet.hub

    def from_hub(namespace: str, cm: str) -> Mapping[str, Any] | None:
        if hub is None:
            raise RuntimeError("no hub client")
        return hub.get_configmap(namespace, cm)

    def from_member(namespace: str, cm: str) -> Mapping[str, Any] | None:
        return fleet.client(name).get_configmap(namespace, cm)

    read = hub_or_member(from_hub, from_member)
    now_s = rt.options.clock()
    found: MemberForecast = await fleet.run(
        member_forecast, state.spec, state.snapshot.power, now_s, read
    )
    before = state.forecast
    state.forecast, state.forecast_at = found, time.monotonic()
    status["forecast"] = found.status()
    kind, current, reason, message = found.condition()
    made = condition(conditions, kind, current, reason, message, now_rfc3339())
    merged = merge_conditions(conditions, made)
    status["conditions"] = merged
    if before is not None and before.status() != status["forecast"]:
        log.info("member %s: forecast changed (%s)", name, found.reason)
        rt.controller.forecast_changed(name)
    elif before is None or before.reason != found.reason:
        log.info("member %s: forecast %s: %s", name, found.reason, found.message)
    return merged


def _start_watch(rt: Runtime, name: str) -> JobWatch:
    """The member's Job watch; its news reach the event loop via call_soon_threadsafe."""
    loop = asyncio.get_running_loop()
    fleet, controller = rt.fleet, rt.controller

    def reset(items: list[Any]) -> None:
        # A (re)list: every job with a copy here, or recorded here, is looked at again (what
        # waited for this member while its watch was down, e.g. a stale copy to fence).
        changed = fleet.reset_copies(name, items)
        state = fleet.members.get(name)
        for uid in changed | set(state.copies if state else ()):
            controller.copy_changed(name, uid)
        controller.member_changed(name, health=True, capacity=False)
        rt.placer.member_news(name, "synced")

    def changed(kind: str, job: Any) -> None:
        uid = fleet.update_copy(name, kind, job)
        if uid:
            controller.copy_changed(name, uid)

    def failed(why: str) -> None:
        fleet.watch_failed(name, why)
        rt.placer.member_news(name, "watch failed")

    def hand_over(func: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            loop.call_soon_threadsafe(func, *args)

        return call

    watch = JobWatch(
        name,
        lambda: fleet.client(name),
        fleet.selector,
        on_reset=hand_over(reset),
        on_event=hand_over(changed),
        on_error=hand_over(failed),
    )
    watch.start()
    return watch


async def _refuse(
    rt: Runtime, name: str, conditions: list[Mapping[str, Any]] | None, problem: str
) -> list[Mapping[str, Any]]:
    rt.placer.problems.add(name)
    rt.placer.member_news(name, "unusable")
    ready = condition(conditions, "Ready", "False", "InvalidSpec", problem, now_rfc3339())
    merged: list[Mapping[str, Any]] = list(merge_conditions(conditions, ready))
    old = find_condition(conditions, "Ready") or {}
    if old.get("reason") != "InvalidSpec" or old.get("message") != problem:
        await _write_status(rt, name, {"conditions": merged})
        log.warning("member %s cannot be used: %s", name, problem)
    if name in rt.fleet.members:
        rt.fleet.forget(name)
        rt.fleet.removed.pop(name, None)  # unusable is not lost: its jobs wait
    metrics.MEMBER_READY.labels(cluster=name).set(0)
    return merged


async def _write_status(rt: Runtime, name: str, status: dict[str, Any]) -> None:
    hub = rt.fleet.hub
    if hub is None or not status:
        return
    try:
        await rt.writer.call(hub.patch_membercluster_status, name, status, kind="member-status")
    except Exception as exc:  # the next probe writes again
        log.warning("status of MemberCluster %s not written: %s", name, exc)


def _report(rt: Runtime, name: str, ready: bool, error: str | None) -> None:
    reason = "MemberReady" if ready else "MemberNotReady"
    message = "probe succeeded" if ready else f"probes failing: {error}"
    rt.member_event(name, "Normal" if ready else "Warning", reason, message)
    log.info("member %s: %s (%s)", name, reason, message)


async def handle_delete_membercluster(rt: Runtime, name: str) -> None:
    """Unregister a member: take this hub's Jobs off it first (bounded), then forget it, so
    that its ComputeJobs are moved without a second copy running on a cluster we no longer
    see."""
    left = await rt.fleet.withdraw(name, rt.options.delete_timeout)
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        rt.member_event(
            name, "Warning", "OrphanedRemoteJobs", f"unregistered with Jobs left: {shown}"
        )
        log.warning("member %s unregistered; Jobs left behind: %s", name, shown)
    rt.fleet.forget(name)
    rt.placer.problems.discard(name)
    if rt.placer.gate.expected is not None:  # a restart's first placement no longer waits for it
        rt.placer.gate.expected.discard(name)
    rt.placer.member_news(name, "deleted")
    metrics.MEMBER_READY.labels(cluster=name).set(0)
    rt.controller.member_changed(name, health=True, capacity=True)
