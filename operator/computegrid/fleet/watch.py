"""One member's computegrid Jobs of this hub, kept in step by list + watch (a tiny informer).

Why a watch: a member Job's change reaches its ComputeJob in well under a second and costs
nothing while nothing changes, where polling cost a request per member per interval and was
seconds late. The loop is the informer's: list (paginated) and hand over the whole set, then
watch from the list's resourceVersion with bookmarks; the server ends each watch after
``server_timeout`` and we resume from the last resourceVersion; a 410 Gone (compacted
history) relists; silence past ``read_timeout`` (not even a bookmark) counts as a dead
stream and reconnects; any error backs off exponentially with jitter (tenacity's wait) and
relists. The thread only reports; every decision is made on the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tenacity import wait_exponential_jitter

from computegrid.fleet.rest import ApiException, Body, status_message

log = logging.getLogger("computegrid.watch")
OnReset = Callable[[list[Body]], None]  # the complete set after a (re)list
OnEvent = Callable[[str, Body], None]  # ADDED | MODIFIED | DELETED, the Job body
OnError = Callable[[str], None]  # the watch is down; the reason


class Gone(Exception):
    """The resourceVersion is too old (410): relist."""


class ListWatch:
    """The informer's loop for one collection, in a thread of its own; subclasses say what
    to list (``_relist``: hand the set over, return the list's resourceVersion) and what to
    watch (``_events``)."""

    def __init__(
        self,
        name: str,
        on_error: OnError,
        *,
        server_timeout: int = 60,
        read_timeout: float = 90.0,
    ) -> None:
        self.name = name
        self.on_error = on_error
        self.server_timeout = server_timeout
        self.read_timeout = read_timeout
        self.stopped = threading.Event()
        self._poked = threading.Event()  # cuts a backoff short: the server answers again
        self.thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)
        self.relists = 0
        self.wait = wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=1.0)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it notices at the next event or when the watch ends."""
        self.stopped.set()
        self._poked.set()

    def poke(self) -> None:
        """The server answers again (a probe said so): relist now, not after the backoff."""
        self._poked.set()

    def _relist(self) -> str:
        raise NotImplementedError

    def _events(self, version: str) -> Iterator[Body]:
        raise NotImplementedError

    def _event(self, kind: str, obj: Body) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            try:
                version = self._relist()
                self.relists += 1
                failures = 0
                self._follow(version)
            except Gone:
                continue
            except Exception as exc:  # any failure: report, back off, relist
                failures += 1
                self.on_error(status_message(exc))
                delay = self.wait(_Attempt(failures))  # type: ignore[arg-type]
                log.debug("watch of %s failed (%s); relist in %.1fs", self.name, exc, delay)
                self._poked.clear()
                self._poked.wait(delay)

    def _follow(self, version: str) -> None:
        while not self.stopped.is_set():
            for event in self._events(version):
                if self.stopped.is_set():
                    return
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiException(int(obj.get("code") or 0), str(obj.get("message") or ""))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self._event(str(kind), obj)


class JobWatch(ListWatch):
    """One member's computegrid Jobs of this hub: the whole set after each list."""

    def __init__(
        self,
        member: str,
        client: Callable[[], Any],
        selector: str,
        on_reset: OnReset,
        on_event: OnEvent,
        on_error: OnError,
        *,
        server_timeout: int = 60,
        read_timeout: float = 90.0,
    ) -> None:
        super().__init__(member, on_error, server_timeout=server_timeout, read_timeout=read_timeout)
        self.member = member
        self.client = client  # called anew after an error: the Secret may have changed
        self.selector = selector
        self.on_reset, self.on_event = on_reset, on_event
        self._member: Any = None

    def _relist(self) -> str:
        self._member = self.client()
        items, version = self._member.list_jobs_at(self.selector)
        if not self.stopped.is_set():
            self.on_reset(items)
        del items  # never hold the list past the hand-over
        return str(version)

    def _events(self, version: str) -> Iterator[Body]:
        return self._member.watch_jobs(  # type: ignore[no-any-return]
            self.selector, version, self.server_timeout, self.read_timeout
        )

    def _event(self, kind: str, obj: Body) -> None:
        self.on_event(kind, obj)


class _Attempt:
    """The slice of tenacity's RetryCallState its wait strategies read."""

    def __init__(self, number: int) -> None:
        self.attempt_number = number
