"""The controller's work queue (handlers/queue.py): each key once at a time, urgent keys
(jobs to place) before the rest (a restart's relist of finished jobs), and keys timed by the
planning clock (a Deferred job's start)."""

from __future__ import annotations

import asyncio

from computegrid.fleet import Capacity, Fleet, HubWriter
from computegrid.fleet_data import load_latency_model
from computegrid.handlers.controller import Controller
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.queue import WorkQueue, sleep_until


def hubless_controller(fleet: Fleet) -> Controller:
    """A controller with no hub and no members: only its cache and queue are exercised."""
    writer = HubWriter(None)  # type: ignore[arg-type]
    return Controller(OperatorOptions(), fleet, Capacity(load_latency_model()), writer)


async def drain(queue: WorkQueue) -> list[str]:
    """Every key handed out now, in order (each marked done at once)."""
    out = []
    while len(queue):
        key = await asyncio.wait_for(queue.get(), 1.0)
        out.append(key)
        queue.done(key)
    return out


def test_urgent_keys_come_out_before_the_rest_each_once() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        for i in range(300):
            queue.add(f"finished-{i}")
        queue.add("new", urgent=True)
        queue.add("new", urgent=True)
        queue.add("finished-0")
        return await drain(queue)

    order = asyncio.run(scenario())
    assert order[0] == "new"
    assert order[1:] == [f"finished-{i}" for i in range(300)]


def test_a_key_moved_up_is_handed_out_once_from_the_urgent_lane() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        queue.add("a")
        queue.add("b")
        queue.add("b", urgent=True)  # b's spec changed: now it waits for placement
        first = await drain(queue)
        queue.add("b")  # later, an ordinary change: one more turn, not two
        return first + await drain(queue)

    assert asyncio.run(scenario()) == ["b", "a", "b"]


def test_a_key_added_while_worked_on_comes_back_once_with_its_urgency() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        queue.add("late")
        queue.add("x")
        key = await queue.get()
        assert key == "late"
        queue.add("x", urgent=True)  # x moves up, ahead of the second turn of "late"
        queue.add("late")
        queue.add("late", urgent=True)  # added twice while worked on: once again, urgent
        queue.done("late")
        return [key, *await drain(queue)]

    assert asyncio.run(scenario()) == ["late", "x", "late"]


def test_the_controller_puts_jobs_to_place_ahead_of_a_relisted_history() -> None:
    """What a restart's listing gives the controller: finished jobs first (name order), the
    new one last; the new one is worked on first, and so is its next step once decided."""

    def body(name: str, phase: str | None) -> dict[str, object]:
        meta = {"uid": name, "namespace": "ns", "name": name, "resourceVersion": "1"}
        return {"metadata": meta, **({"status": {"phase": phase}} if phase else {})}

    async def scenario() -> list[str]:
        fleet = Fleet(None, hub_name="h")
        controller = hubless_controller(fleet)
        for i in range(50):
            controller.observe("ADDED", body(f"done-{i:02d}", "Succeeded"))
        controller.observe("ADDED", body("zz-new", None))
        first = await controller.queue.get()
        controller.queue.done(first)
        controller.queue.add("zz-new")  # decided: its record and create come next
        second = await controller.queue.get()
        fleet.close()
        return [first, second]

    assert asyncio.run(scenario()) == ["zz-new", "zz-new"]


def test_a_relist_forgets_only_the_jobs_it_no_longer_holds_in_its_namespace() -> None:
    """A list reports no deletions: what the cache holds and a (re)list of the same
    namespace does not was deleted while nothing watched; it goes to ``gone`` (its copies
    are removed) and is worked on. Other namespaces' jobs are not that list's to judge."""

    def body(uid: str, namespace: str) -> dict[str, object]:
        meta = {"uid": uid, "namespace": namespace, "name": uid, "resourceVersion": "1"}
        return {"metadata": meta, "status": {"phase": "Running"}}

    async def scenario() -> tuple[set[str], set[str], list[str]]:
        fleet = Fleet(None, hub_name="h")
        controller = hubless_controller(fleet)
        controller.observe_all([body("kept", "a"), body("deleted", "a"), body("other", "b")])
        for _ in range(3):  # the adds' work, done
            controller.queue.done(await controller.queue.get())
        controller.relisted("a", {"kept"})
        queued = [await controller.queue.get()]
        fleet.close()
        return set(controller.jobs), set(controller.gone), queued

    jobs, gone, queued = asyncio.run(scenario())
    assert jobs == {"kept", "other"}
    assert gone == {"deleted"}
    assert queued == ["deleted"]


def test_a_key_timed_by_the_planning_clock_comes_when_that_clock_says_not_before() -> None:
    """A Deferred job's start is a wall-clock time. A machine resumed from a pause (a VM, a
    laptop) has its wall clock stepped ahead while the monotonic clock asyncio sleeps on
    stood still: the start must come when the wall clock reaches it, not a pause later
    (a CI run lost a job's look at its start this way, after a 36 s pause). Here the
    planning clock is stepped 100 s ahead at once; a timer on the monotonic clock would
    hand the key out 100 s later, the queue's next look at the clock (1 s) does it now."""

    async def scenario() -> tuple[int, set[str]]:
        now = [1_000.0]
        queue = WorkQueue(clock=lambda: now[0])
        timers = asyncio.create_task(queue.run_timers())
        queue.add_at("start", 1_100.0)
        await asyncio.sleep(0.2)
        early = len(queue)  # not yet: the planning clock reads 1,000
        now[0] = 1_100.0  # resumed: the wall clock stepped ahead
        getting = asyncio.create_task(queue.get())
        done, _ = await asyncio.wait({getting}, timeout=50.0)  # half the monotonic timer's
        timers.cancel()
        getting.cancel()
        return early, {task.result() for task in done}

    early, handed_out = asyncio.run(scenario())
    assert early == 0
    assert handed_out == {"start"}


def test_the_joint_rounds_sleep_ends_when_the_planning_clock_reaches_its_turn() -> None:
    """The hourly joint re-plan sleeps until the turn of the hour on the planning clock: a
    resumed machine (the wall clock stepped ahead) runs it at once, not an hour's sleep on."""

    async def scenario() -> tuple[bool, bool]:
        now = [1_000.0]
        sleeper = asyncio.create_task(sleep_until(lambda: now[0], 4_600.0))
        await asyncio.sleep(0.2)
        early = sleeper.done()
        now[0] = 4_600.0
        done, _ = await asyncio.wait({sleeper}, timeout=50.0)
        sleeper.cancel()
        return early, sleeper in done

    early, woke = asyncio.run(scenario())
    assert not early
    assert woke
