"""The operator's in-memory state, made once at startup and shared by every handler.

Why memory is allowed to know more than the hub: a status patch lands only after a handler
returns, and the next timer tick may still see the old body. ``remotes`` keeps the freshest
word on where each job's Job lives, so a tick never dispatches a job twice; after a restart
it starts empty and ``status.remote`` plus the members' uid labels rebuild the picture.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import kopf

from computegrid.fleet import Fleet
from computegrid.handlers.options import OperatorOptions
from computegrid.scheduling import LatencyModel, Scheduler

MISSING: Any = object()


@dataclass
class Runtime:
    options: OperatorOptions
    fleet: Fleet
    latency: LatencyModel
    scheduler: Scheduler
    remotes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    attempts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    events: dict[tuple[str, str], str] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def remote_of(self, uid: str, status: dict[str, Any]) -> dict[str, Any] | None:
        known = self.remotes.get(uid, MISSING)
        if known is MISSING:
            remote: dict[str, Any] | None = status.get("remote") or None
            return remote
        result: dict[str, Any] | None = known
        return result

    def forget(self, uid: str) -> None:
        for table in (self.remotes, self.attempts, self.locks):
            table.pop(uid, None)
        for key in [k for k in self.events if k[0] == uid]:
            del self.events[key]

    def emit(
        self, body: Any, uid: str, kind: str, reason: str, message: str, *, once: bool = False
    ) -> None:
        """Post an Event; with ``once``, only when the message for this reason changed."""
        if once and self.events.get((uid, reason)) == message:
            return
        self.events[(uid, reason)] = message
        kopf.event(body, type=kind, reason=reason, message=message[:1000])


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return _runtime
