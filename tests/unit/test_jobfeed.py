"""handlers.jobfeed: the hub's ComputeJobs reach the controller in order, only while the
feed runs, and a peered replica's feed runs while any MemberCluster daemon holds it.

The hub client is the boundary replaced here (the integration tests run the real one against
the test bed: test_operator_hub_relist.py and every operator test)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

from test_workqueue import hubless_controller

from computegrid.fleet import Fleet
from computegrid.handlers.jobfeed import JobFeed


def job(uid: str, phase: str | None = None) -> dict[str, Any]:
    meta = {"uid": uid, "namespace": "ns", "name": uid, "resourceVersion": "1"}
    return {"metadata": meta, "status": {"phase": phase} if phase else {}}


class Hub:
    """Serves one list and one watch event, then a watch that waits until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.events = [{"type": "ADDED", "object": job("new")}]

    def unfinished_computejobs(self, namespaces: list[str]) -> list[dict[str, Any]]:
        return [job("running", "Running")]

    def computejob_pages(self, namespace: str | None) -> Iterator[tuple[list[Any], str]]:
        yield [job("running", "Running")], "5"
        yield [job("done", "Succeeded")], "5"

    def watch_computejobs(self, namespace: str | None, *_: Any) -> Iterator[dict[str, Any]]:
        yield from self.events
        self.events = []
        self.release.wait(5.0)


async def until(check: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


def test_the_feed_lists_then_watches_and_a_relist_forgets_the_unlisted() -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        fleet = Fleet(None, hub_name="h")
        controller = hubless_controller(fleet)
        controller.observe("ADDED", job("deleted-meanwhile", "Running"))
        hub = Hub()
        feed = JobFeed(hub, controller, [])  # type: ignore[arg-type]
        feed.start()
        await until(lambda: "new" in controller.jobs)
        feed.stop()
        hub.release.set()
        fleet.close()
        return set(controller.jobs), set(controller.gone)

    jobs, gone = asyncio.run(scenario())
    assert jobs == {"running", "done", "new"}
    assert gone == {"deleted-meanwhile"}


def test_a_peered_feed_runs_while_any_daemon_holds_it_and_drops_a_stopped_watch_news() -> None:
    async def scenario() -> list[bool]:
        fleet = Fleet(None, hub_name="h")
        controller = hubless_controller(fleet)
        hub = Hub()
        hub.events = []
        feed = JobFeed(hub, controller, ["ns"])  # type: ignore[arg-type]
        seen = []
        feed.hold()
        feed.hold()
        await until(lambda: "done" in controller.jobs)
        feed.release()
        seen.append(bool(feed.watches))  # one daemon still holds it
        feed.release()
        seen.append(bool(feed.watches))
        controller.jobs.clear()
        stale = feed._callbacks(asyncio.get_running_loop(), feed.generation - 1)
        stale[2]("ADDED", job("late"))  # an event a stopped watch still hands over
        await asyncio.sleep(0.05)
        seen.append("late" in controller.jobs)
        hub.release.set()
        fleet.close()
        return seen

    assert asyncio.run(scenario()) == [True, False, False]
