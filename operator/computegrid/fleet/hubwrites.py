"""Every write to the hub, bounded and coalesced.

Why: under load the hub answered status patches with 504s, each retry opened a new
connection, each error became another Event, and writes had no limit. Here:
- at most ``in_flight`` hub writes run at once (one pool, reused connections);
- a status patch that may wait (mirroring progress) is *coalesced*: patches for one job
  merge while they wait ``linger`` seconds, so Dispatched and Running usually land as one
  write, and a job that moves fast never queues a write per step;
- a status patch that must land before a member is touched (recording a placement) is
  written at once and *conditionally*, with the resourceVersion it was decided on: a 409
  means someone else wrote first, and the caller re-reads instead of acting on old news;
- transient failures (429, 5xx, timeouts) retry with exponential backoff and jitter;
- Events are best effort: deduplicated per job, reason and message, dropped (and counted)
  rather than queued without bound when the hub is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from computegrid.api.conditions import now_rfc3339
from computegrid.fleet.client import Body, HubClient
from computegrid.fleet.probes import transient
from computegrid.fleet.rest import ApiException

log = logging.getLogger("computegrid.hub")
Done = Callable[[Body | None], None]  # the object after the write (None: it is gone)


class Conflict(Exception):
    """The object changed since the caller read it: read again and decide again."""


@dataclass
class _Pending:
    namespace: str
    name: str
    patch: dict[str, Any]
    due: float
    done: list[Done] = field(default_factory=list)


@dataclass(frozen=True)
class JobRef:
    """The object an Event is about (a ComputeJob, or a cluster-scoped MemberCluster)."""

    namespace: str  # where the Event goes ("default" for cluster-scoped objects)
    name: str
    uid: str
    kind: str = "ComputeJob"
    scoped: bool = True  # namespaced object (involvedObject.namespace set)


class HubWriter:
    def __init__(
        self,
        hub: HubClient,
        *,
        in_flight: int = 32,
        linger: float = 0.5,
        attempts: int = 6,
        event_backlog: int = 5000,
        event_senders: int = 4,
        status_writers: int = 8,
    ) -> None:
        self.hub = hub
        # Placement records (``write_now``) are the dispatch's critical path; status writers
        # and Event senders are bounded on their own, so of the 32 slots at least 20 are left
        # for records. With 16, records had 4 under load and queued behind mirroring: 1,000
        # jobs as fast as one client submits, p99 create → member Job 4.9-12.2 s with 16 and
        # 3.3-6.8 s with 32, four pairs side by side (docs/operator.md).
        self.pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="hub")
        self.slots = asyncio.Semaphore(in_flight)
        self.linger = linger
        self.attempts = attempts
        self.pending: dict[str, _Pending] = {}
        # (due, order, uid) of every pending patch, soonest first; an entry whose patch has
        # gone or fell due sooner since is skipped when it comes up.
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self.busy: set[str] = set()
        self.wake = asyncio.Event()
        self.events: asyncio.Queue[tuple[JobRef, str, str, str]] = asyncio.Queue(event_backlog)
        # uid → reason → hash of the last message: a hash, not the text (a few bytes a job
        # instead of its messages, for as long as the job exists); by uid, so forgetting a
        # job is one lookup, not a scan of every job's (quadratic when 10,000 are deleted).
        self.posted: dict[str, dict[str, int]] = {}
        # Told of every write by kind, and of every dropped Event (the operator's metrics).
        self.on_write: Callable[[str], None] = lambda kind: None
        self.on_drop: Callable[[], None] = lambda: None
        self.event_senders = event_senders
        # Queued status patches written at once, at most: the rest wait in ``pending``, where
        # newer patches of the same job merge into them (fewer writes), and the other slots
        # stay free for placements. Unbounded, a burst of 3,000 jobs made 3,000 tasks queue
        # on the slots ahead of every placement write, each holding a retry state (tracemalloc:
        # 5 MB of tenacity objects; dispatch waited behind mirror updates).
        self.status_writers = max(1, min(status_writers, in_flight))
        self._tasks: list[asyncio.Task[None]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="hub-status-writer"),
            *[
                asyncio.create_task(self._event_loop(), name=f"hub-event-writer-{i}")
                for i in range(self.event_senders)
            ],
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, func: Callable[..., Any], *args: Any, kind: str = "other") -> Any:
        """Any other hub call, within the same bound (MemberCluster status, reads)."""
        return await self._call(func, *args, kind=kind)

    async def _call(self, func: Callable[..., Any], *args: Any, kind: str) -> Any:
        loop = asyncio.get_running_loop()
        async with self.slots:
            self.on_write(kind)
            return await loop.run_in_executor(self.pool, func, *args)

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=10.0),
            retry=retry_if_exception(transient),
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- status -------------------------------------------------------------------------

    async def write_now(
        self, uid: str, namespace: str, name: str, patch: dict[str, Any], resource_version: str
    ) -> Body | None:
        """Write at once, conditionally, together with this job's waiting patch (``patch`` wins
        where both speak). Raises Conflict on 409; returns None when the object is gone."""
        while uid in self.busy:  # one write per object at a time, in order
            await asyncio.sleep(0.01)
        waiting = self.pending.pop(uid, None)
        if waiting is not None:
            patch = {**waiting.patch, **patch}
        self.busy.add(uid)
        try:
            body: Body = await self._retrying(
                lambda: self._call(
                    self.hub.patch_computejob_status,
                    namespace,
                    name,
                    patch,
                    resource_version,
                    kind="status-conditional",
                )
            )
            return body
        except ApiException as exc:
            if waiting is not None and exc.status != 404:  # not lost: back in the queue
                if self.pending.setdefault(uid, waiting) is waiting:
                    self._schedule(uid, waiting.due)
                self.wake.set()
            if exc.status == 409:
                raise Conflict(f"{namespace}/{name} changed meanwhile") from None
            if exc.status == 404:
                return None
            raise
        finally:
            self.busy.discard(uid)
            if uid in self.pending:
                self.wake.set()  # a patch that came meanwhile waited for this write

    def write_later(
        self,
        uid: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        done: Done,
        *,
        linger: float | None = None,
    ) -> None:
        """Queue a patch; merged with this job's waiting one (later keys win). It is written
        after ``linger`` seconds (default: the writer's), or sooner if a patch merged into it
        asks for sooner: progress can wait for the next phase change and go with it."""
        due = time.monotonic() + (self.linger if linger is None else linger)
        waiting = self.pending.get(uid)
        if waiting is None:
            self.pending[uid] = _Pending(namespace, name, dict(patch), due, [done])
            self._schedule(uid, due)
        else:
            waiting.patch.update(patch)
            waiting.done.append(done)
            if due < waiting.due:
                waiting.due = due
                self._schedule(uid, due)
        self.wake.set()

    def _schedule(self, uid: str, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._order), uid))

    async def _flush_loop(self) -> None:
        timeout: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            timeout = self._start_due(time.monotonic())

    def _start_due(self, now: float) -> float | None:
        """Start writes for due patches, soonest first, up to ``status_writers`` at a time;
        the seconds until the next one is due (None: a finishing write wakes the loop).

        A heap by due time: the scan costs the writes started, not the patches waiting
        (thousands in a burst), and a phase change (0.5 s) never waits behind progress
        (5 s) queued before it."""
        held: list[tuple[float, int, str]] = []  # due, but their job's write is in flight
        try:
            while self._due and len(self._flushing) < self.status_writers:
                due, order, uid = self._due[0]
                item = self.pending.get(uid)
                if item is None or item.due != due:
                    heapq.heappop(self._due)  # written meanwhile, or due sooner: stale
                    continue
                if due > now:
                    return due - now
                heapq.heappop(self._due)
                if uid in self.busy:
                    held.append((due, order, uid))  # that write re-wakes us when done
                    continue
                del self.pending[uid]
                self.busy.add(uid)
                task = asyncio.create_task(self._flush(uid, item))
                self._flushing.add(task)
                task.add_done_callback(self._flush_done)
            return None
        finally:
            for entry in held:
                heapq.heappush(self._due, entry)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if self.pending:
            self.wake.set()  # a writer is free

    async def _flush(self, uid: str, item: _Pending) -> None:
        result: Body | None = None
        try:
            result = await self._retrying(
                lambda: self._call(
                    self.hub.patch_computejob_status,
                    item.namespace,
                    item.name,
                    item.patch,
                    kind="status",
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning(
                    "status of %s/%s not written: HTTP %s", item.namespace, item.name, exc.status
                )
                self._requeue(uid, item)
                return
        except Exception as exc:  # still failing after the retries: keep it, try later
            log.warning("status of %s/%s not written yet: %s", item.namespace, item.name, exc)
            self._requeue(uid, item)
            return
        finally:
            self.busy.discard(uid)
        for done in item.done:
            done(result)

    def _requeue(self, uid: str, item: _Pending) -> None:
        later = self.pending.get(uid)
        if later is not None:  # a newer patch waits: it wins where both speak
            item.patch.update(later.patch)
            item.done.extend(later.done)
        item.due = time.monotonic() + 5.0
        self.pending[uid] = item
        self._schedule(uid, item.due)
        self.wake.set()

    # -- events -------------------------------------------------------------------------

    def event(self, job: JobRef, kind: str, reason: str, message: str) -> None:
        """Post an Event unless this job's last Event of that reason said the same."""
        said, digest = self.posted.setdefault(job.uid, {}), hash(message)
        if said.get(reason) == digest:
            return
        said[reason] = digest
        try:
            self.events.put_nowait((job, kind, reason, message[:1000]))
        except asyncio.QueueFull:
            self.on_drop()

    def forget(self, uid: str) -> None:
        self.posted.pop(uid, None)

    async def _event_loop(self) -> None:
        while True:
            job, kind, reason, message = await self.events.get()
            now = now_rfc3339()
            body = {
                "metadata": {"generateName": f"{job.name}.", "namespace": job.namespace},
                "involvedObject": {
                    "apiVersion": "computegrid.io/v1alpha1",
                    "kind": job.kind,
                    "name": job.name,
                    "uid": job.uid,
                    **({"namespace": job.namespace} if job.scoped else {}),
                },
                "type": kind,
                "reason": reason,
                "message": message,
                "source": {"component": "computegrid"},
                "reportingComponent": "computegrid.io/operator",
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            try:
                await self._call(self.hub.create_event, job.namespace, body, kind="event")
            except Exception as exc:  # best effort: an Event never blocks or retries forever
                log.debug("event %s on %s/%s not posted: %s", reason, job.namespace, job.name, exc)
