"""A Deferred job whose start found no room and whose --max-replans are used up waits for
room on its planned member, but only until its latest start: from then on the placer plans
it again, to start now wherever there is room (issue 9: "a deadline that can no longer be
met makes the job start at once"). The operator's own parts, no API server."""

from __future__ import annotations

import asyncio

from tests.unit.placer_parts import LEAD_S, QINGYANG, P, deferred, hold, parts

from computegrid.fleet import Fleet
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placer import Placer
from computegrid.lifecycle import machine

__all__ = ["parts"]  # the fixture, used by name
NOW = P - LEAD_S  # the operator's clock in ``parts``
WHY = "no room at its start: gansu-qingyang has room for 0 of its 1 pod(s) now"


def blocked(
    controller: Controller, placer: Placer, uid: str, left: int, deadline_s: float
) -> Entry:
    """A 10-minute job due on gansu-qingyang a minute ago, found without room there, with
    ``left`` re-plans left: the machine has asked the placer for a new plan."""
    used = controller.options.max_replans - left
    entry = deferred(uid, QINGYANG, NOW - 60, replans=used, deadline_s=deadline_s)
    hold(controller, entry)
    placer.replan(entry, WHY)
    return entry


def test_a_job_past_its_replans_is_planned_again_once_its_latest_start_has_come(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    _, controller, placer = parts
    # Its latest start came a second ago (deadline NOW + 599 s, a 10-minute run).
    late = blocked(controller, placer, "late", left=0, deadline_s=NOW + 599)
    placer._drain()
    plan, basis, why, joint = controller.replans["late"]
    assert not plan.deferred and not joint  # start now, on a member with room now
    assert basis == late.status["deferral"] and why == WHY
    assert plan.timed.window.late  # the planner knows the deadline can no longer be met


def test_before_its_latest_start_a_job_past_its_replans_keeps_waiting_for_its_member(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    _, controller, placer = parts
    # Latest starts a minute ahead: "waiting" waits for room on gansu-qingyang; "left", the
    # same job with a re-plan left, is planned again (the bound decides, not the lateness).
    blocked(controller, placer, "waiting", left=0, deadline_s=NOW + 660)
    blocked(controller, placer, "left", left=1, deadline_s=NOW + 660)
    placer._drain()
    assert set(controller.replans) == {"left"}
    assert not placer.replanning  # asked once; the machine asks again on the next look


def test_a_job_waiting_for_room_is_looked_at_again_when_its_latest_start_comes(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """Kept due, a waiting job is looked at again on every fleet change; on a fleet where
    nothing changes (its member full of long work) only the second wake-up the machine asks
    for (``recheck_at``: its latest start) brings the look that plans it anywhere. Queued
    once, however often the job is looked at meanwhile."""
    _, controller, _placer = parts
    entry = deferred("waiting", QINGYANG, NOW - 60, replans=3, deadline_s=NOW + 660)
    hold(controller, entry)
    step = machine.Step(wake_at=NOW - 60, recheck_at=NOW + 60)  # as _blocked returns it

    def timers() -> list[float]:
        return sorted(
            round(at - controller.options.clock())
            for at, key in controller.queue._at
            if key == entry.uid
        )

    for _ in range(3):  # three looks, say on three fleet changes
        asyncio.run(controller.carry_out(entry, step))
    # At its start, a minute ago (at once: kept among the due jobs), and at its latest start.
    assert timers() == [-60, 60]
