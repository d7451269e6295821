"""The operator's joint re-plan of Deferred jobs (handlers/joint.py), with the operator's own
parts and no API server: jobs planned one by one, first come first served, are re-planned
together when that costs less, whatever their own re-plans; a job left out keeps its room."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import numpy as np
import pytest
from tests.unit.placer_parts import LEAD_S, QINGYANG, P, deferred, hold, parts

from computegrid.fleet import Fleet
from computegrid.fleet.forecasts import MemberForecast
from computegrid.handlers import joint
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placer import Placer
from computegrid.lifecycle.machine import rfc3339_of
from computegrid.scheduling.forecast import HOUR_S, Forecast

__all__ = ["parts"]  # the fixture, used by name
TIANFU, CHONGQING = "chengdu-chongqing-tianfu", "chengdu-chongqing-chongqing"
PINNED = {"computegrid.io/max-latency-ms": "3"}  # from qingyang: gansu-qingyang alone


def forecasts(fleet: Fleet) -> None:
    """From the hour before P, 48 h: gansu-qingyang 100 g/kWh in hour P and 400 otherwise;
    tianfu 300 and chongqing 600 throughout; every price the same (only carbon decides)."""
    series = {
        QINGYANG: np.where(np.arange(48) == 1, 100.0, 400.0),
        TIANFU: np.full(48, 300.0),
        CHONGQING: np.full(48, 600.0),
    }
    for name, carbon in series.items():
        forecast = Forecast(
            P - HOUR_S, carbon, carbon.copy(), np.full(48, 0.3), np.full(48, 0.4), "ConfigMap"
        )
        fleet.members[name].forecast = MemberForecast(forecast, True, "Current", "")


def test_first_come_plans_are_replanned_together_when_that_saves_carbon(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """Two 100-core jobs; gansu-qingyang's 192 general cores hold one at P. "a" came first and
    took gansu-qingyang at P (100 g/kWh); "b", which may run only there, was left its hour
    after (400). Together: "a" now on tianfu (300), "b" at P: 400 per unit of work against 500."""
    fleet, controller, placer = parts
    forecasts(fleet)
    # "a" has used up its own re-plans (--max-replans): they do not bind the joint plan.
    a = deferred("a", QINGYANG, P, cpu="50", parallelism=2, replans=controller.options.max_replans)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="50", parallelism=2, annotations=PINNED)
    hold(controller, a, b)
    moved = asyncio.run(joint.replan_jointly(placer))
    assert moved == 2 and set(controller.replans) == {"a", "b"}
    plan_a, basis_a, why, is_joint = controller.replans["a"]
    assert (plan_a.cluster, plan_a.deferred) == (TIANFU, False)  # start now
    assert basis_a == a.status["deferral"]
    assert (why, is_joint) == ("2 Deferred job(s) planned together", True)
    plan_b, _, _, _ = controller.replans["b"]
    assert (plan_b.cluster, plan_b.timed.start_s) == (QINGYANG, P)
    assert plan_b.timed.reasons()[0].startswith("start at ")  # its own words, at the new slot
    assert len(controller.queue) == 2  # their workers record the new plans


def test_a_job_left_out_keeps_its_plan_and_its_room(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    fleet, controller, placer = parts
    forecasts(fleet)
    a = deferred("a", QINGYANG, P, cpu="50", parallelism=2)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="50", parallelism=2, annotations=PINNED)
    hold(controller, a, b)
    placer.replanning["a"] = (a, "the forecast of gansu-qingyang changed")  # its own, pending
    # "a" is left out; its 100 cores at P stay promised, so "b" has no room at P either and
    # its own plan is already its best: nothing changes.
    assert asyncio.run(joint.replan_jointly(placer)) == 0
    assert controller.replans == {}


def test_due_jobs_and_jobs_with_a_replan_pending_are_left_out(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    fleet, controller, placer = parts
    forecasts(fleet)
    due = deferred("due", QINGYANG, P - LEAD_S - 1)  # its start's own check decides
    pending = deferred("pending", QINGYANG, P)
    hold(controller, due, pending)
    controller.replans["pending"] = ("a plan of its own", {}, "the forecast changed", False)
    assert asyncio.run(joint.replan_jointly(placer)) == 0
    assert set(controller.replans) == {"pending"}


def test_the_next_round_is_just_past_the_turn_of_the_interval() -> None:
    assert joint.until_next(7200.0 + 10.0, 3600.0) == 3590.0 + joint.DELAY_S
    assert joint.until_next(7200.0, 60.0) == 60.0 + joint.DELAY_S


def test_a_replica_that_does_not_follow_the_hub_plans_nothing(
    parts: tuple[Fleet, Controller, Placer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused standby's cache of the hub is stale: its joint loop must not act on it."""
    fleet, controller, placer = parts
    monkeypatch.setattr(joint, "DELAY_S", 0.1)  # rounds just past each second
    forecasts(fleet)
    a = deferred("a", QINGYANG, P, cpu="50", parallelism=2)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="50", parallelism=2, annotations=PINNED)
    hold(controller, a, b)
    controller.options = dataclasses.replace(controller.options, joint_replan_interval=1.0)
    placer.following = lambda: False

    async def two_rounds_of_the_loop() -> None:
        placer.start()
        await asyncio.sleep(2.5)
        await placer.stop()

    asyncio.run(two_rounds_of_the_loop())
    assert controller.replans == {}
    placer.following = lambda: True
    asyncio.run(two_rounds_of_the_loop())
    assert set(controller.replans) == {"a", "b"}  # the same loop, following: it moves both


def busy(fleet: Fleet, name: str, cores_per_node: float) -> None:
    """Running work on each general node of ``name`` (it will end; when, nobody has said)."""
    state = fleet.members[name]
    nodes = tuple(
        dataclasses.replace(n, requested={**n.requested, "cpu": cores_per_node})
        if n.compute_type.value == "general"
        else n
        for n in state.snapshot.nodes
    )
    state.snapshot = dataclasses.replace(state.snapshot, nodes=nodes)


def at_p_on_qingyang(controller: Controller) -> set[str]:
    return {
        uid
        for uid, (plan, _, _, _) in controller.replans.items()
        if (plan.cluster, plan.timed.start_s) == (QINGYANG, P)
    }


def test_the_plan_counts_on_room_running_work_gives_back(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """gansu-qingyang's three 64-core general nodes run 14 cores each now: 150 free, 146.16
    less the 2 % reserve. Two 80-core jobs want its green hour P: the LP plans on the room free
    now (one and 0.83 of the other), the rounding keeps only the pool's 192 cores less the
    reserve (188.16), so both are promised P: the running work may end by then (nobody said
    when), and the start checks the room."""
    fleet, controller, placer = parts
    forecasts(fleet)
    busy(fleet, QINGYANG, 14.0)
    a = deferred("a", TIANFU, P, cpu="40", parallelism=2)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="40", parallelism=2, annotations=PINNED)
    hold(controller, a, b)
    assert asyncio.run(joint.replan_jointly(placer)) == 2
    assert at_p_on_qingyang(controller) == {"a", "b"}  # 160 cores promised, 146.16 free now


def test_the_plan_never_promises_more_than_the_pool_holds(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """The same with a third 80-core job: 240 cores do not fit in 188.16, whatever runs now;
    two are promised P on gansu-qingyang, the pinned one among them."""
    fleet, controller, placer = parts
    forecasts(fleet)
    busy(fleet, QINGYANG, 14.0)
    a = deferred("a", TIANFU, P, cpu="40", parallelism=2)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="40", parallelism=2, annotations=PINNED)
    c = deferred("c", TIANFU, P + HOUR_S, cpu="40", parallelism=2)
    hold(controller, a, b, c)
    asyncio.run(joint.replan_jointly(placer))
    promised = at_p_on_qingyang(controller)
    assert len(promised) == 2 and "b" in promised


def test_a_job_larger_than_the_room_free_now_may_be_promised_a_later_hour(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """40 cores run on each of gansu-qingyang's three 64-core general nodes: 72 free, 68.16
    above the reserve, less than the 80 the job asks. The LP gives it 0.85 of P there (its largest
    share; the rest on tianfu), the rounding keeps the pool's 188.16: promised P, and the
    job's own figures at P (its Event's words) are not held to the room free now."""
    fleet, controller, placer = parts
    forecasts(fleet)
    busy(fleet, QINGYANG, 40.0)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="40", parallelism=2)
    hold(controller, b)
    assert asyncio.run(joint.replan_jointly(placer)) == 1
    assert at_p_on_qingyang(controller) == {"b"}
    plan, _, _, _ = controller.replans["b"]
    assert plan.timed.reasons()[0].startswith("start at ")


def running(uid: str, cluster: str, ends_s: float, offset_s: float, windowed: bool) -> Entry:
    """An 80-core job running on ``cluster`` since 10 min before ``ends_s`` (planning clock;
    its status's startTime is on the wall clock); windowed: it declared those 10 min."""
    spec = json.loads(deferred(uid, cluster, ends_s).spec_text or "{}")
    spec["resources"], spec["parallelism"] = {"cpu": "40", "memory": "1Gi"}, 2
    if not windowed:
        del spec["timing"]
    entry = Entry(uid, "team-a", f"job-{uid}")
    entry.update(
        {
            "metadata": {"uid": uid, "namespace": "team-a", "name": f"job-{uid}",
                         "generation": 1, "resourceVersion": "2",
                         "creationTimestamp": "2026-11-29T00:00:00Z",
                         "annotations": {"computegrid.io/origin": "qingyang",
                                         "computegrid.io/latency-sensitivity": "low"}},
            "spec": spec,
            "status": {"phase": "Running",
                       "remote": {"cluster": cluster, "namespace": "h-team-a",
                                  "name": f"cg-{uid}", "attempt": 1},
                       "startTime": rfc3339_of(ends_s - 600.0 - offset_s)},
        }
    )  # fmt: skip
    return entry


@pytest.mark.parametrize("windowed", [True, False])
def test_room_a_running_windowed_job_gives_back_at_its_declared_end_is_planned_on(
    parts: tuple[Fleet, Controller, Placer], windowed: bool
) -> None:
    """40 cores run on each of gansu-qingyang's three 64-core general nodes (72 free), 80 of
    them a job due to end 5 min before P. Windowed (it declared its duration), its room counts
    from slot P: the LP has 148.16 cores there, one of two 80-core jobs whole and 0.85 of the
    other, both promised P (within the pool's 188.16). Without a window nobody knows its end:
    the LP has 68.16, one job at P, the other elsewhere."""
    fleet, controller, placer = parts
    forecasts(fleet)
    busy(fleet, QINGYANG, 40.0)
    a = deferred("a", TIANFU, P, cpu="40", parallelism=2)
    b = deferred("b", QINGYANG, P + HOUR_S, cpu="40", parallelism=2)
    hold(controller, a, b)
    offset = controller.options.clock_offset
    controller.jobs["r"] = running("r", QINGYANG, P - 300.0, offset, windowed)
    asyncio.run(joint.replan_jointly(placer))
    assert len(at_p_on_qingyang(controller)) == (2 if windowed else 1)
