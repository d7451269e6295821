"""A work queue keyed by job uid, in the manner of client-go's: one worker per key at a time,
a key added while it is being worked on is worked on again afterwards (never twice at once),
and a key can be added after a delay (backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time


class WorkQueue:
    def __init__(self) -> None:
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._working: set[str] = set()
        self._again: set[str] = set()
        self._later: list[tuple[float, str]] = []
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued) + len(self._working)

    def add(self, key: str) -> None:
        if key in self._working:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        heapq.heappush(self._later, (time.monotonic() + delay, key))
        self._wake.set()

    async def get(self) -> str:
        key = await self._ready.get()
        self._queued.discard(key)
        self._working.add(key)
        return key

    def done(self, key: str) -> None:
        self._working.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

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
