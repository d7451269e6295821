"""The hub's ComputeJobs into the controller: one ``ComputeJobWatch`` per watched namespace
(one for all when the operator watches the whole hub), running while this replica leads.

Leading: a standalone operator always leads. A peered one leads while Kopf runs its
MemberCluster daemons (Kopf stops every daemon of a paused replica): the first daemon to
start starts the watches, the last to stop stops them, and a resume lists the hub again
before anything is acted on. So a peered operator with no MemberCluster at all does not
follow ComputeJobs (there is nowhere to place them; they wait, with no status, until one is
added).

Pages of the list are handed over and waited for (the watch thread never reads ahead of the
loop by more than a page); events are handed over without waiting, each already cut to what
the cache reads. Whatever a stopped watch still hands over is dropped on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from computegrid.fleet import ComputeJobWatch, HubClient
from computegrid.handlers import metrics
from computegrid.handlers.controller import Controller

log = logging.getLogger("computegrid.hubwatch")


class JobFeed:
    def __init__(self, hub: HubClient, controller: Controller, namespaces: list[str]) -> None:
        self.hub, self.controller = hub, controller
        self.namespaces: list[str | None] = list(namespaces) or [None]
        self.watches: list[ComputeJobWatch] = []
        self.holders = 0
        self.generation = 0  # a stop ends a generation: what its watches still send is dropped

    def start(self) -> None:
        if self.watches:
            return
        loop = asyncio.get_running_loop()
        for namespace in self.namespaces:
            watch = ComputeJobWatch(self.hub, namespace, *self._callbacks(loop, self.generation))
            self.watches.append(watch)
            watch.start()
        log.info("following the hub's ComputeJobs (%s)", ", ".join(map(str, self.namespaces)))

    def stop(self) -> None:
        self.generation += 1
        for watch in self.watches:
            watch.stop()
        if self.watches:
            log.info("no longer following the hub's ComputeJobs")
        self.watches = []

    def hold(self) -> None:
        """A MemberCluster daemon started (peering: this replica leads)."""
        self.holders += 1
        self.start()

    def release(self) -> None:
        """A MemberCluster daemon stopped; the last one stops the watches."""
        self.holders = max(0, self.holders - 1)
        if self.holders == 0:
            self.stop()

    def _callbacks(
        self, loop: asyncio.AbstractEventLoop, generation: int
    ) -> tuple[Callable[..., None], ...]:
        controller = self.controller

        def on_loop(func: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                if self.generation == generation:
                    func(*args)

            return call

        def waited(func: Callable[..., None]) -> Callable[..., None]:
            async def run(*args: Any) -> None:
                on_loop(func)(*args)

            def call(*args: Any) -> None:
                asyncio.run_coroutine_threadsafe(run(*args), loop).result()

            return call

        def handed(func: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                loop.call_soon_threadsafe(on_loop(func), *args)

            return call

        def failed(why: str) -> None:
            metrics.HUB_WATCH_ERRORS.inc()
            log.warning("the hub's ComputeJob watch failed (relisting after a backoff): %s", why)

        return (
            waited(controller.observe_all),
            waited(controller.relisted),
            handed(controller.observe),
            handed(failed),
        )
