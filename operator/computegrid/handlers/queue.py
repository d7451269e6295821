"""A work queue keyed by job uid, in the manner of client-go's: one worker per key at a time,
a key added while it is being worked on is worked on again afterwards (never twice at once),
and a key can be added after a delay (backoff).

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


class WorkQueue:
    def __init__(self, is_urgent: Callable[[str], bool] = lambda key: False) -> None:
        self.is_urgent = is_urgent
        self._lanes: tuple[deque[str], deque[str]] = (deque(), deque())  # urgent, the rest
        self._entries: asyncio.Queue[None] = asyncio.Queue()  # one item per lane entry
        self._queued: dict[str, bool] = {}  # key → queued in the urgent lane
        self._working: set[str] = set()
        self._again: dict[str, bool] = {}  # added while worked on → urgent
        self._later: list[tuple[float, str]] = []
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
            now = time.monotonic()
            while self._later and self._later[0][0] <= now:
                _, key = heapq.heappop(self._later)
                self.add(key)
            timeout = (self._later[0][0] - now) if self._later else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
