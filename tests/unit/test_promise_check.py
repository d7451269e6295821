"""The placer's promise check (issue 9), with the operator's own parts and no API server: on a
new fleet generation, a Deferred job whose member can no longer keep its promise is planned
again at once (saying why), only clusters whose readiness or allocatable resources changed are
judged, and due jobs held for room are queued again. And a job whose create a member refused
for good is tried again on the first fleet generation after the refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import pytest
from tests.unit.placer_parts import LEAD_S, QINGYANG, P, deferred, hold, parts

from computegrid.api import restricted_template
from computegrid.fleet import Fleet
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placer import Placer
from computegrid.lifecycle import machine
from computegrid.scheduling import Decision

__all__ = ["parts"]  # the fixture, used by name


def test_a_lost_member_breaks_its_promises_at_the_next_generation(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    fleet, controller, placer = parts
    there, elsewhere = deferred("q", QINGYANG, P), deferred("t", "chengdu-chongqing-tianfu", P)
    hold(controller, there, elsewhere)
    placer._drain()  # the first look after a (re)start judges every promise: all kept
    assert controller.replans == {}
    member = fleet.members[QINGYANG]  # two failed probes, as probes.py records them
    member.ready, member.down_since = False, time.monotonic()
    member.not_ready_reason = "ProbeFailed: connection refused"
    fleet.generation += 1
    placer._drain()
    assert set(controller.replans) == {"q"}  # the tianfu promise is not touched
    plan, basis, why, joint = controller.replans["q"]
    assert not joint
    assert plan.cluster != QINGYANG and basis == there.status["deferral"]
    assert why == (
        "the promise cannot be kept: gansu-qingyang is not Ready (ProbeFailed: connection refused)"
    )
    assert len(controller.queue) == 1  # its worker records the new plan


def test_only_clusters_whose_shape_changed_are_judged_and_unknown_members_never(
    parts: tuple[Fleet, Controller, Placer], caplog: pytest.LogCaptureFixture
) -> None:
    fleet, controller, placer = parts
    hold(controller, deferred("q", QINGYANG, P))
    placer._drain()  # the shapes of the first look are kept
    big = deferred("big", QINGYANG, P, cpu="50", parallelism=4)  # more than qingyang's 192
    hold(controller, big)
    fleet.generation += 1  # a probe that moved only pods' requests: no cluster changed shape
    placer._drain()
    assert controller.replans == {}  # not judged: nothing it depends on moved
    member = fleet.members[QINGYANG]
    member.ready = False  # without down_since: its view is Unknown (not probed, not watched)
    fleet.generation += 1
    placer._drain()
    assert controller.replans == {}  # its shape moved, but nothing is certain about it
    member.ready = True
    with caplog.at_level(logging.INFO, "computegrid.placer"):
        fleet.generation += 1
        placer._drain()
    broken = sorted(r.args[0] for r in caplog.records if r.msg.startswith("Deferred job"))
    assert broken == ["big", "q"]  # judged now: together they ask 201 of its 192 cores
    assert "less than the 201 promised" in caplog.text
    # The small one moves; the big one fits nowhere now and keeps its plan (said in the log).
    assert set(controller.replans) == {"q"} and "no new plan for Deferred job big" in caplog.text


def test_due_jobs_held_for_room_are_queued_on_every_new_generation(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    fleet, controller, placer = parts
    due, later = deferred("due", QINGYANG, P - LEAD_S - 60), deferred("later", QINGYANG, P)
    hold(controller, due, later)
    controller.wakes.update({"due": P - LEAD_S - 60, "later": P})
    placer._drain()
    assert len(controller.queue) == 1  # only the due one
    placer._drain()  # no new generation: nothing
    assert len(controller.queue) == 1
    fleet.generation += 1
    controller.queue = type(controller.queue)()
    placer._drain()
    assert len(controller.queue) == 1


def test_nodes_gone_break_a_promise_they_held(parts: tuple[Fleet, Controller, Placer]) -> None:
    """gansu-qingyang keeps one general node of its three (64 cores): two 40-core promises at P
    no longer fit there, and both are judged broken (which of the two should move is the
    planner's call: each is planned again with the other's new promise counted)."""
    fleet, controller, placer = parts
    a, b = deferred("a", QINGYANG, P, cpu="40"), deferred("b", QINGYANG, P, cpu="40")
    hold(controller, a, b)
    placer._drain()
    assert controller.replans == {}
    member = fleet.members[QINGYANG]
    assert member.snapshot is not None
    general = [n for n in member.snapshot.nodes if n.compute_type.value == "general"]
    kept = tuple(n for n in member.snapshot.nodes if n not in general[1:])
    member.snapshot = dataclasses.replace(member.snapshot, nodes=kept)
    fleet.generation += 1
    placer._drain()
    assert set(controller.replans) == {"a", "b"}
    for _, _, why, _ in controller.replans.values():
        assert why == (
            "the promise cannot be kept: gansu-qingyang's general nodes now hold 64 cpu, less "
            "than the 80 promised over its run"
        )


def too_big(uid: str) -> dict[str, Any]:
    """A Pending low-class job without a window that no member of the three can take."""
    return {
        "metadata": {
            "uid": uid, "namespace": "team-a", "name": f"job-{uid}", "generation": 1,
            "resourceVersion": "1", "creationTimestamp": "2026-11-29T00:00:00Z",
            "annotations": {"computegrid.io/origin": "qingyang",
                            "computegrid.io/latency-sensitivity": "low"},
        },
        "spec": {
            "resources": {"cpu": "5000", "memory": "1Gi"},
            "template": restricted_template("busybox", restartPolicy="Never"),
        },
    }  # fmt: skip


def test_a_create_refused_while_the_fleet_moved_is_tried_on_the_new_fleet(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """A member refused the Job for good: the job waits for the spec or the fleet to change,
    judged from the fleet at the refusal. The retry key used to be taken after the hub write,
    so a probe that moved the fleet while a slow hub took the write passed for the old fleet
    and the job waited for the next change (on a quiet fleet, for ever)."""
    fleet, controller, placer = parts
    body = too_big("big")
    job = Entry("big", "team-a", "job-big")
    job.update(body)
    controller.jobs[job.uid] = job
    job.blocked = placer.key(job, room=False)  # as Controller._create does on a refusal
    step = machine.refused(job.status, "2026-11-29T00:00:00Z", "DispatchRefused", "forbidden")
    assert step.final

    async def slow_hub_write(uid: str, *_: Any) -> dict[str, Any]:
        fleet.generation += 1  # a probe saw the fleet change while the write was in flight
        written = {**body["metadata"], "resourceVersion": "2"}
        return {**body, "metadata": written, "status": dict(step.patch)}

    controller.writer.write_now = slow_hub_write  # type: ignore[method-assign]
    asyncio.run(controller.carry_out(job, step))
    placer.add(job)
    placer._drain()
    assert job.uid in controller.decided  # judged again, on the new generation
    assert controller.decided.pop(job.uid).patch["message"].startswith("0/3 clusters can take")
    placer._drain()
    assert job.uid not in controller.decided  # and not again until the fleet moves
    job.blocked = placer.key(job, room=False)
    controller.capacity.freed += 1  # room came back somewhere: not what the member refused
    placer._drain()
    assert job.uid not in controller.decided


def sized(uid: str, cpu: str) -> Entry:
    body = too_big(uid)
    body["spec"]["resources"]["cpu"] = cpu
    entry = Entry(uid, "team-a", f"job-{uid}")
    entry.update(body)
    return entry


def test_room_that_ended_reservations_give_back_is_offered_to_refused_jobs(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    """800 short jobs on a bed with room for 660: the 141 refused for room waited for ever.
    Their room was held by reservations of jobs whose pods came and went between two probes,
    so no probe moved the fleet when those ended; the placer must look again by itself."""
    fleet, controller, placer = parts
    controller.capacity.ttl = 0.3  # the backstop; a job seen finished ends its own at once
    refused = None
    for i in range(200):  # fill every member with promises until one job is refused
        job = sized(f"j{i}", "32")
        controller.jobs[job.uid] = job
        placer.add(job)
        placer._drain()
        if isinstance(controller.decided.get(job.uid), machine.Step):
            refused = job
            break
    assert refused is not None, "the three members never filled up"
    controller.decided.pop(refused.uid)
    generation = fleet.generation

    async def until_placed() -> bool:
        placer.start()
        try:
            for _ in range(200):
                await asyncio.sleep(0.02)
                if isinstance(controller.decided.get(refused.uid), Decision):
                    return True
            return False
        finally:
            await placer.stop()

    assert asyncio.run(until_placed())  # woken by the expiry alone
    assert fleet.generation == generation  # no probe, no new fleet: only room given back


def test_a_job_seen_finished_gives_its_room_back_and_wakes_the_placer(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    _fleet, controller, placer = parts
    job = sized("short", "1")
    controller.jobs[job.uid] = job
    placer.add(job)
    placer._drain()
    assert isinstance(controller.decided.pop(job.uid), Decision)
    assert job.uid in controller.capacity.reservations
    placer.wake.clear()
    freed = controller.capacity.freed
    succeeded = machine.Step({"phase": "Succeeded"})  # as the mirror writes a finished copy
    asyncio.run(controller.carry_out(job, succeeded))
    assert job.uid not in controller.capacity.reservations
    assert controller.capacity.freed == freed + 1 and placer.wake.is_set()
