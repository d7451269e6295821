"""Placement as one ordered queue drained in batches against one compiled fleet state.

Jobs waiting for a cluster sit here, ordered by latency class (critical first) then age. When
woken (a new job, a probe that moved capacity or readiness), the placer takes the state of
the current fleet generation (``fleet.Capacity``: compiled once per generation,
reservations applied as decisions are made) and decides for the waiting jobs one after
another. A job that cannot be placed is not retried until its spec or the fleet changes
(its ``key``), so a backlog of unschedulable jobs costs nothing between changes.

Recording a decision (the conditional hub write) and creating the Job happen in the job's
own worker (``Controller.act``): the placer only decides and reserves, so it never waits on
an API server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from computegrid.api.conditions import now_rfc3339
from computegrid.dispatch import remote_name, tenant_namespace
from computegrid.handlers import metrics
from computegrid.handlers.controller import Controller
from computegrid.handlers.federation import refusal
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import (
    InvalidJob,
    decision_message,
    diagnosis_message,
    placement_status,
)
from computegrid.lifecycle import machine
from computegrid.scheduling import Decision, Scheduler

log = logging.getLogger("computegrid.placer")
BATCH = 500
STARTUP_WAIT_S = 10.0  # longest a restart waits for members' first probes before placing


@dataclass
class Placer:
    controller: Controller
    scheduler: Scheduler
    expected: set[str] = field(default_factory=set)  # MemberClusters listed at start
    waiting: dict[str, Entry] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)
    problems: set[str] = field(default_factory=set)  # members that cannot be probed at all
    task: asyncio.Task[Any] | None = None

    def __post_init__(self) -> None:
        self.controller.placer = self

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="placer")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def key(self, entry: Entry) -> tuple[Any, ...]:
        """What a refused placement depended on: the job's spec and the fleet."""
        return (entry.generation, self.controller.fleet.generation)

    def add(self, entry: Entry) -> None:
        self.waiting[entry.uid] = entry
        self.wake.set()

    def _members_known(self) -> bool:
        """Placement waits (at most STARTUP_WAIT_S) for every registered member's first probe and
        Job list, so a restart neither misses a member's capacity nor a Job it already runs."""
        if time.monotonic() - self.started > STARTUP_WAIT_S:
            return True
        members = self.controller.fleet.members
        return all(
            n in self.problems or (n in members and members[n].probed and members[n].synced)
            for n in self.expected
        )

    async def _loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while not self._members_known():
                await asyncio.sleep(0.2)
            try:
                more = self._drain()
            except Exception:  # a bug must not stop placement for good: log, next wake
                log.exception("placement round failed")
                more = False
            if more:
                self.wake.set()
            await asyncio.sleep(0)

    def _drain(self) -> bool:
        """Decide for up to BATCH waiting jobs; True when more are waiting."""
        controller = self.controller
        fleet = controller.fleet
        state = controller.capacity.state(fleet.generation, fleet.snapshots)
        order = sorted(self.waiting.values(), key=lambda e: e.priority)
        tried = 0
        for entry in order:
            if tried >= BATCH:
                return True
            uid = entry.uid
            current = controller.jobs.get(uid)
            if current is not entry or entry.deleting or entry.status.get("remote"):
                self.waiting.pop(uid, None)
                continue
            if entry.blocked == self.key(entry):
                continue
            tried += 1
            loop = refusal(entry, controller.options.hub_name)
            if loop is not None:
                self._refuse(entry, "FederationLoop", loop, outcome="invalid")
                continue
            try:
                request = entry.request(controller.pod_policy)
            except InvalidJob as exc:
                self._refuse(entry, "InvalidSpec", str(exc), outcome="invalid")
                continue
            started = time.perf_counter()
            result = self.scheduler.schedule(request, state)
            metrics.SCHEDULING_SECONDS.observe(time.perf_counter() - started)
            if not isinstance(result, Decision):
                self._refuse(entry, "Unschedulable", diagnosis_message(result), "unschedulable")
                continue
            controller.capacity.reserve(uid, result.cluster.name, request)
            controller.decided[uid] = result
            self.waiting.pop(uid, None)
            controller.queue.add(uid)
        return False

    def _refuse(self, entry: Entry, reason: str, message: str, outcome: str) -> None:
        metrics.DECISIONS.labels(outcome=outcome).inc()
        entry.blocked = self.key(entry)
        step = machine.pending(entry.status, now_rfc3339(), reason, message)
        if step.patch or step.actions:  # written by the job's worker, in order with the rest
            self.controller.decided[entry.uid] = step
            self.controller.queue.add(entry.uid)

    async def record(self, entry: Entry, decision: Decision) -> None:
        """Write the decision to the hub (conditionally), then create the Job: the step's
        actions run in the job's worker, which called us."""
        attempts = int(entry.status.get("attempts") or 0)
        if any(c.attempt > attempts for c in self.controller.fleet.copies_of(entry.uid)):
            # A member's watch has since shown a copy no record names: adopt it instead.
            self.controller.capacity.release(entry.uid)
            self.controller.queue.add(entry.uid)
            return
        job = entry.job()
        cluster = self.controller.fleet.member_of(decision.cluster.name)  # a Hub's child: the hub
        namespace = tenant_namespace(entry.namespace)
        name = remote_name(entry.namespace, entry.name, entry.uid)
        message = decision_message(decision)
        step = machine.placed(
            entry.status,
            now_rfc3339(),
            cluster=cluster,
            namespace=namespace,
            name=name,
            placement=placement_status(decision, now_rfc3339()),
            message=message,
            generation=job.metadata.generation or entry.generation,
            digest=entry.digest(),
        )
        try:
            await self.controller.carry_out(entry, step)
        except Exception:
            self.controller.capacity.release(entry.uid)
            raise
        stale = entry.status.get("staleCopies") or []
        reschedule = int(entry.status.get("reschedules") or 0) > 0 and bool(stale)
        metrics.DECISIONS.labels(outcome="rescheduled" if reschedule else "scheduled").inc()
        if reschedule:
            metrics.RESCHEDULES.labels(from_cluster=str(stale[-1].get("cluster"))).inc()
        _, carbon, cost = decision.savings_per_hour()
        metrics.CARBON_SAVED.inc(max(carbon, 0.0))
        metrics.COST_SAVED.inc(max(cost, 0.0))
