"""The hub's ComputeJobs, kept in step by list + watch in a thread (the operator's informer).

Why our own watch and not Kopf's ``on.event``: Kopf runs every event through its full
handler pipeline (a deep copy of the body for its diff base, cause detection, a worker task
and queue per object, a memory per object for ever). With thousands of jobs that was a
third of the event loop's time (py-spy, 1,000 jobs) and a few kilobytes per job held, for
a handler that only hands the body over. Here a page or an event costs one parse and one
call on the loop.

The order of what is handed over matters for a restart: the unfinished jobs first (the hub
selects them, so a history of thousands is not in the way of a new job), then every job a
page at a time, then the set of uids the list held (``on_listed``): a job the cache holds
that the list does not was deleted while nothing watched. Events follow from the list's
resourceVersion; a 410 or any error relists (``ListWatch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from computegrid.fleet.client import HubClient, computejob_essence
from computegrid.fleet.rest import Body
from computegrid.fleet.watch import ListWatch, OnError, OnEvent

OnPage = Callable[[list[Body]], None]  # some jobs as the hub holds them now
OnListed = Callable[[str | None, set[str]], None]  # namespace (None: all), every uid listed


class ComputeJobWatch(ListWatch):
    def __init__(
        self,
        hub: HubClient,
        namespace: str | None,
        on_page: OnPage,
        on_listed: OnListed,
        on_event: OnEvent,
        on_error: OnError,
        *,
        server_timeout: int = 120,
        read_timeout: float = 150.0,
    ) -> None:
        super().__init__(
            f"computejobs-{namespace or 'all'}",
            on_error,
            server_timeout=server_timeout,
            read_timeout=read_timeout,
        )
        self.hub, self.namespace = hub, namespace
        self.on_page, self.on_listed, self.on_event = on_page, on_listed, on_event
        self.unfinished_read = False

    def _relist(self) -> str:
        if not self.unfinished_read:
            namespaces = [self.namespace] if self.namespace else []
            self.on_page(self.hub.unfinished_computejobs(namespaces))
            self.unfinished_read = True
        listed: set[str] = set()
        version = ""
        for items, version in self.hub.computejob_pages(self.namespace):
            if self.stopped.is_set():
                return version
            listed.update(str((job.get("metadata") or {}).get("uid")) for job in items)
            self.on_page(items)
        self.on_listed(self.namespace, listed)
        return version

    def _events(self, version: str) -> Iterator[Body]:
        return self.hub.watch_computejobs(
            self.namespace, version, self.server_timeout, self.read_timeout
        )

    def _event(self, kind: str, obj: Body) -> None:
        # The bulk is dropped here, in the thread: an event waiting for the loop is small.
        self.on_event(kind, computejob_essence(obj))
