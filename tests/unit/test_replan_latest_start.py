"""A Deferred job whose start found no room and whose --max-replans are used up waits for
room on its planned member, but only until its latest start: from then on the placer plans
it again, to start now wherever there is room (issue 9: "a deadline that can no longer be
met makes the job start at once"). The operator's own parts, no API server."""

from __future__ import annotations

from tests.unit.placer_parts import LEAD_S, QINGYANG, P, deferred, hold, parts

from computegrid.fleet import Fleet
from computegrid.handlers.controller import Controller
from computegrid.handlers.placer import Placer

__all__ = ["parts"]  # the fixture, used by name
NOW = P - LEAD_S  # the operator's clock in ``parts``
WHY = "no room at its start: gansu-qingyang has room for 0 of its 1 pod(s) now"


def test_a_job_past_its_replans_is_planned_again_once_its_latest_start_has_come(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    _, controller, placer = parts
    used_up = controller.options.max_replans
    # Due at NOW − 60 s; its latest start came a second ago (deadline NOW + 599 s, 10 min run).
    late = deferred("late", QINGYANG, NOW - 60, replans=used_up, deadline_s=NOW + 599)
    hold(controller, late)
    placer.replan(late, WHY)
    placer._drain()
    plan, basis, why, joint = controller.replans["late"]
    assert not plan.deferred and not joint  # start now, on a member with room now
    assert basis == late.status["deferral"] and why == WHY
    assert plan.timed.window.late  # the planner knows the deadline can no longer be met


def test_before_its_latest_start_a_job_past_its_replans_keeps_waiting_for_its_member(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    _, controller, placer = parts
    used_up = controller.options.max_replans
    # Its latest start is a minute ahead: it waits for room on gansu-qingyang.
    waiting = deferred("waiting", QINGYANG, NOW - 60, replans=used_up, deadline_s=NOW + 660)
    # With a re-plan left, the same job is planned again (the bound, not the lateness).
    left = deferred("left", QINGYANG, NOW - 60, replans=used_up - 1, deadline_s=NOW + 660)
    hold(controller, waiting, left)
    placer.replan(waiting, WHY)
    placer.replan(left, WHY)
    placer._drain()
    assert set(controller.replans) == {"left"}
    assert not placer.replanning  # asked once; the machine asks again on the next look
