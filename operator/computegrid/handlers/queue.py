"""A work queue keyed by job uid, in the manner of client-go's: one worker per key at a time,
a key added while it is being worked on is worked on again afterwards (never twice at once),
and a key can be added after a delay (backoff) or at a time of the planning clock (a
Deferred job's start).

Two lanes: urgent keys (a job still to place or to follow, as ``is_urgent`` says unless the
caller does) are handed out before the rest. Why: a restart relists every ComputeJob the hub
holds, finished ones by the thousand, and a new job listed among them must not wait behind
all of their reconciles to be placed, nor its recording and creation once it is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable

# How often the timers look at the planning clock while a key waits for a time on it. Why:
# asyncio sleeps on the monotonic clock, which stands still while the machine is suspended (a
# paused VM, a laptop asleep), and the wall clock is stepped ahead on resume; a start planned
# for 12:00 must come at 12:00 by the wall clock, not a pause later.
CLOCK_CHECK_S = 1.0


async def sleep_until(clock: Callable[[], float], when: float) -> None:
    """Until ``clock`` reads ``when``: asleep in steps of at most CLOCK_CHECK_S (why: above)."""
    while (left := when - clock()) > 0:
        await asyncio.sleep(min(left, CLOCK_CHECK_S))


class WorkQueue:
    def __init__(
        self,
        is_urgent: Callable[[str], bool] = lambda key: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.is_urgent = is_urgent
        self.clock = clock  # the planning clock add_at's times are on
        self._lanes: tuple[deque[str], deque[str]] = (deque(), deque())  # urgent, the rest
        self._entries: asyncio.Queue[None] = asyncio.Queue()  # one item per lane entry
        self._queued: dict[str, bool] = {}  # key → queued in the urgent lane
        self._working: set[str] = set()
        self._again: dict[str, bool] = {}  # added while worked on → urgent
        self._later: list[tuple[float, str]] = []  # (monotonic time, key)
        self._at: list[tuple[float, str]] = []  # (planning-clock time, key)
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued) + len(self._working)

    def add(self, key: str, *, urgent: bool | None = None) -> None:
        if urgent is None:
            urgent = self.is_urgent(key)
        if key in self._working:
            self._again[key] = self._again.get(key, False) or urgent
            return
        queued = self._queued.get(key)
        if queued is None or (urgent and not queued):
            # Moved up: its entry in the other lane is skipped when it comes out.
            self._queued[key] = urgent
            self._lanes[0 if urgent else 1].append(key)
            self._entries.put_nowait(None)

    def add_after(self, key: str, delay: float) -> None:
        heapq.heappush(self._later, (time.monotonic() + delay, key))
        self._wake.set()

    def add_at(self, key: str, when: float) -> None:
        """Add ``key`` once the planning clock (``clock``) reads ``when``: never before, so a
        look it brings sees the time come, and at most CLOCK_CHECK_S after."""
        heapq.heappush(self._at, (when, key))
        self._wake.set()

    async def get(self) -> str:
        while True:
            await self._entries.get()
            lane = 0 if self._lanes[0] else 1
            key = self._lanes[lane].popleft()
            if self._queued.get(key) is (lane == 0):  # else moved up, or already handed out
                del self._queued[key]
                self._working.add(key)
                return key

    def done(self, key: str) -> None:
        self._working.discard(key)
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, urgent=again)

    async def run_timers(self) -> None:
        """Move delayed keys to the queue when they are due (one task for the whole queue)."""
        while True:
            waits = [
                self._pop_due(self._later, time.monotonic()),
                self._pop_due(self._at, self.clock()),
            ]
            if self._at:
                waits.append(CLOCK_CHECK_S)
            timeout = min((w for w in waits if w is not None), default=None)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _pop_due(self, heap: list[tuple[float, str]], now: float) -> float | None:
        """Queue the keys of ``heap`` due by ``now``; the wait for the next one (None: none)."""
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            self.add(key)
        return heap[0][0] - now if heap else None
