"""The operator's parts, made once at startup and shared by every handler.

Memory is a cache of the hub: the controller's job cache is filled from the hub's watch and
from the bodies our own writes return, never trusted over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import kopf

from computegrid.fleet import Capacity, Fleet, HubWriter, JobRef
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobfeed import JobFeed
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.placer import Placer
from computegrid.scheduling import LatencyModel


@dataclass
class Runtime:
    options: OperatorOptions
    fleet: Fleet
    latency: LatencyModel
    capacity: Capacity
    writer: HubWriter
    controller: Controller
    placer: Placer
    feed: JobFeed

    def member_event(self, name: str, severity: str, reason: str, message: str) -> None:
        """An Event on a MemberCluster (cluster-scoped: the Event lives in ``default``)."""
        uid = f"mc/{name}"
        state = self.fleet.members.get(name)
        if state is not None:
            uid = state.uid or uid
        ref = JobRef("default", name, uid, kind="MemberCluster", scoped=False)
        self.writer.event(ref, severity, reason, message)


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return _runtime
