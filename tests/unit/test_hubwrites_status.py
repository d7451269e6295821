"""The hub writer's status patches: a bounded number written at once, the rest merging while
they wait, and a placement never queued behind mirror updates.

The hub is a stand-in at the boundary the writer calls in its thread pool
(``patch_computejob_status``): it records each call and holds unconditional patches until
the test lets them go.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from computegrid.fleet import HubWriter
from computegrid.fleet.hubwrites import JobRef


class HeldHub:
    """Unconditional patches (mirroring) wait for ``release``; conditional ones (placements)
    answer at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.running = 0
        self.most = 0

    def patch_computejob_status(
        self, namespace: str, name: str, status: dict[str, Any], version: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self.calls.append((name, dict(status)))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if version is None:
                self.release.wait(10)
            return {"metadata": {"name": name, "resourceVersion": "1"}, "status": status}
        finally:
            with self.lock:
                self.running -= 1


async def settle(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_at_most_status_writers_at_once_and_waiting_patches_merge() -> None:
    async def scenario() -> tuple[HeldHub, list[str]]:
        hub = HeldHub()
        writer = HubWriter(hub, in_flight=4, linger=0.0, status_writers=2)  # type: ignore[arg-type]
        writer.start()
        finished: list[str] = []
        try:
            for i in range(10):
                writer.write_later(
                    f"u{i}", "team", f"j{i}", {"phase": "Dispatched"}, finished.append
                )
            await settle(lambda: hub.running == 2)
            await asyncio.sleep(0.1)  # a third write would have started by now
            for i in range(10):
                writer.write_later(f"u{i}", "team", f"j{i}", {"phase": "Running"}, finished.append)
            hub.release.set()
            await settle(lambda: len(finished) == 20)
        finally:
            await writer.stop()
        return hub, finished

    hub, _ = asyncio.run(scenario())
    assert hub.most == 2
    # j0 and j1 were being written when Running came: two writes each. The other eight were
    # still waiting: Running merged into their one write.
    assert sorted(name for name, _ in hub.calls) == sorted(
        ["j0", "j0", "j1", "j1", *(f"j{i}" for i in range(2, 10))]
    )
    merged = [status for name, status in hub.calls if name not in ("j0", "j1")]
    assert all(status == {"phase": "Running"} for status in merged)


def test_a_placement_is_written_while_mirror_updates_wait() -> None:
    async def scenario() -> dict[str, Any] | None:
        hub = HeldHub()
        writer = HubWriter(hub, in_flight=4, linger=0.0, status_writers=2)  # type: ignore[arg-type]
        writer.start()
        try:
            for i in range(50):
                writer.write_later(f"u{i}", "team", f"j{i}", {"phase": "Running"}, lambda _: None)
            await settle(lambda: hub.running == 2)
            placed = await asyncio.wait_for(
                writer.write_now("p", "team", "placed", {"phase": "Scheduled"}, "7"), 5.0
            )
            hub.release.set()
            return placed
        finally:
            await writer.stop()

    placed = asyncio.run(scenario())
    assert placed is not None and placed["status"] == {"phase": "Scheduled"}


def test_a_phase_change_is_not_held_behind_progress_queued_before_it() -> None:
    async def scenario() -> list[str]:
        hub = HeldHub()
        hub.release.set()
        writer = HubWriter(hub, in_flight=4, status_writers=2)  # type: ignore[arg-type]
        writer.start()
        try:
            writer.write_later("u1", "team", "slow", {"active": 1}, lambda _: None, linger=5.0)
            writer.write_later(
                "u2", "team", "fast", {"phase": "Running"}, lambda _: None, linger=0.0
            )
            await settle(lambda: len(hub.calls) == 1, seconds=2.0)
            return [name for name, _ in hub.calls]
        finally:
            await writer.stop()

    assert asyncio.run(scenario()) == ["fast"]


def test_placements_keep_their_slots_while_every_status_writer_and_event_sender_waits() -> None:
    """The writer's defaults: mirroring (8 writers) and Events (4 senders) held by a slow hub
    leave 20 slots to placement records, which all go out at once."""

    class HeldEvents(HeldHub):
        """Also holds Events; a placement answers once 20 placements are in flight at once
        (or after 3 s: fewer slots show as a lower ``most``)."""

        placing = threading.Barrier(20, timeout=3)

        def patch_computejob_status(
            self, namespace: str, name: str, status: dict[str, Any], version: str | None = None
        ) -> dict[str, Any]:
            if version is not None:
                with self.lock:
                    self.running += 1
                    self.most = max(self.most, self.running)
                try:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        self.placing.wait()
                    return {"metadata": {"name": name, "resourceVersion": "1"}, "status": status}
                finally:
                    with self.lock:
                        self.running -= 1
            return super().patch_computejob_status(namespace, name, status, version)

        def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                self.release.wait(10)
                return body
            finally:
                with self.lock:
                    self.running -= 1

    async def scenario() -> tuple[int, list[dict[str, Any] | None]]:
        hub = HeldEvents()
        writer = HubWriter(hub, linger=0.0)  # type: ignore[arg-type]
        writer.start()
        try:
            for i in range(50):
                writer.write_later(f"u{i}", "team", f"j{i}", {"phase": "Running"}, lambda _: None)
                writer.event(JobRef("team", f"j{i}", f"u{i}"), "Normal", "Scheduled", "placed")
            await settle(lambda: hub.running == 8 + 4)
            placements = [
                writer.write_now(f"p{i}", "team", f"p{i}", {"phase": "Scheduled"}, "7")
                for i in range(20)
            ]
            placed = await asyncio.wait_for(asyncio.gather(*placements), 5.0)
            most = hub.most
            hub.release.set()
            return most, placed
        finally:
            await writer.stop()

    most, placed = asyncio.run(scenario())
    assert most == 8 + 4 + 20  # held mirroring and Events, and every placement at once
    assert all(p is not None and p["status"] == {"phase": "Scheduled"} for p in placed)
