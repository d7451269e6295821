"""The ComputeJob controller: the hub's jobs in a cache, a work queue, the state machine
carried out.

Inputs are events, never timers per job: the hub's ComputeJob watch (``observe``), each
member's Job watch (``copy_changed``), probes (``member_changed``) and one 1 s tick that
looks only at members that are down. A worker takes one job at a time from the queue, asks
``lifecycle.machine`` what to do, writes the hub first (conditionally where the step says
so), then acts on members. Placement is batched by ``placer.Placer``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from computegrid.api import Phase, PodPolicy
from computegrid.api.conditions import now_rfc3339
from computegrid.dispatch import (
    ForeignNamespace,
    create_or_adopt,
    tenant_for,
)
from computegrid.fleet import Capacity, Conflict, Fleet, HubWriter, JobRef
from computegrid.fleet.rest import http_status, status_message
from computegrid.handlers import metrics
from computegrid.handlers.federation import remote_body
from computegrid.handlers.jobcache import LEGACY_FINALIZER, Entry
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.placement import InvalidJob
from computegrid.handlers.queue import WorkQueue
from computegrid.handlers.startclock import CLOCK
from computegrid.handlers.timing import room_now
from computegrid.lifecycle import (
    Action,
    Copy,
    Do,
    Health,
    Member,
    Room,
    Situation,
    Step,
    copy_of,
    machine,
)

log = logging.getLogger("computegrid.jobs")
FINAL_STATUSES = (400, 403, 404, 409, 422)
WORKERS = 64  # jobs worked on at once: most of a job's time is API latency, not CPU
# Progress inside a phase (Dispatched=True, pod counts) waits up to a minute for the next
# phase change and goes with it: a job's life is then the placement record, Running, its end
# (the hub already shows where it went: status.remote is in the placement record). At 5 s
# the bed's one-minute jobs wrote Dispatched and "pods created" as two more writes each; at
# 30 s, a fifth of them still wrote the pod counts on their own (300 jobs, 3.04 per job).
PROGRESS_LINGER_S = 60.0


def final(exc: BaseException) -> bool:
    """A refusal retrying cannot fix (until the spec or the fleet changes)."""
    status = http_status(exc)
    if status is not None:
        return status in FINAL_STATUSES
    return isinstance(exc, PermissionError | ValueError | InvalidJob)


@dataclass
class Controller:
    options: OperatorOptions
    fleet: Fleet
    capacity: Capacity
    writer: HubWriter
    jobs: dict[str, Entry] = field(default_factory=dict)
    gone: dict[str, Entry] = field(default_factory=dict)  # deleted on the hub, copies to remove
    queue: WorkQueue = field(default_factory=WorkQueue)
    decided: dict[str, Any] = field(default_factory=dict)  # uid → Decision or refusal Step
    failures: dict[str, int] = field(default_factory=dict)
    orphans: dict[tuple[str, str], Copy] = field(default_factory=dict)
    placer: Any = None  # set by the placer itself (it needs the controller)
    pod_policy: PodPolicy | None = None  # from its ConfigMap (handlers/policies.py)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)  # uids whose hub status is Deferred
    wakes: dict[str, float] = field(default_factory=dict)  # uid → the wake-up already queued
    rechecks: dict[str, float] = field(default_factory=dict)  # uid → its Step.recheck_at queued
    replans: dict[str, tuple[Any, dict[str, Any], str, bool]] = field(
        default_factory=dict
    )  # uid → (Plan, the deferral it replaces, why, a move of the joint plan)

    def __post_init__(self) -> None:
        self.queue.is_urgent = self._unfinished
        self.queue.clock = self.options.clock  # the clock the machine judges starts by

    def _unfinished(self, uid: str) -> bool:
        """The work queue's urgent lane: jobs still to place or follow, not a relisted history."""
        entry = self.jobs.get(uid)
        return entry is not None and not entry.finished

    # -- inputs ---------------------------------------------------------------------------

    def observe(self, kind: str | None, body: dict[str, Any]) -> None:
        """An event of the hub's ComputeJob watch (``fleet.ComputeJobWatch``)."""
        CLOCK.note("first_job_seen")
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        if kind == "DELETED":
            self._forget(uid, body)
            return
        entry = self.jobs.get(uid)
        if entry is None:
            entry = self.jobs[uid] = Entry(uid, str(meta.get("namespace")), str(meta.get("name")))
        if entry.update(body):
            metrics.track_phase(uid, entry.phase, entry.cluster)
            self._track(entry)
            self.queue.add(uid)

    def observe_all(self, bodies: list[dict[str, Any]]) -> None:
        """A page of the hub's list (or its unfinished jobs, read first at start)."""
        for body in bodies:
            self.observe("ADDED", body)

    def relisted(self, namespace: str | None, listed: set[str]) -> None:
        """A list of the hub's ComputeJobs (in ``namespace``; all when None) has ended: a job
        held here that it did not hold was deleted while nothing watched (a list reports no
        deletions), so it is forgotten and its copies removed."""
        for uid, entry in list(self.jobs.items()):
            if uid not in listed and namespace in (None, entry.namespace):
                log.info(
                    "ComputeJob %s/%s (%s) is gone from the hub (deleted while unwatched)",
                    entry.namespace,
                    entry.name,
                    uid,
                )
                metrics.HUB_SWEEP_REMOVED.inc()
                self._forget(uid)

    def _forget(self, uid: str, body: dict[str, Any] | None = None) -> None:
        """The job is gone from the hub: its copies are removed by the next reconcile."""
        entry = self.jobs.pop(uid, None)
        self.deferred.discard(uid)
        if entry is not None:
            if body is not None:
                entry.update(body)
            self.gone[uid] = entry
            self.queue.add(uid)

    def _track(self, entry: Entry) -> None:
        """Keep the set of Deferred jobs (their promises, and who re-plans on a new forecast);
        a job that succeeded tells the run-time profile how long it ran (once, whether seen
        finishing or listed already finished at a start)."""
        ran = entry.run_once() if entry.finished else None
        if ran is not None and self.placer is not None:
            self.placer.ran(ran)
        if entry.phase == Phase.DEFERRED.value:
            self.deferred.add(entry.uid)
        else:
            self.deferred.discard(entry.uid)

    def copy_changed(self, cluster: str, uid: str) -> None:
        """A member's watch saw one of this hub's Jobs change."""
        if uid in self.jobs or uid in self.gone:
            self.queue.add(uid)
            return
        copy = (self.fleet.members.get(cluster) or _NoCopies).copies.get(uid)
        if copy is not None:
            self.orphans[(cluster, uid)] = copy

    def member_changed(self, name: str, *, health: bool, capacity: bool) -> None:
        """A probe moved a member's readiness or free capacity."""
        if capacity or health:
            self.wake_placer()
        if health:
            for uid, entry in self.jobs.items():
                if entry.mentions(name):
                    self.queue.add(uid)

    def forecast_changed(self, name: str) -> None:
        """A member's forecast changed: Deferred jobs may do better now (bounded re-plans)."""
        if self.placer is None:
            return
        for uid in self.deferred:
            entry = self.jobs.get(uid)
            if entry is not None:
                self.placer.replan(entry, f"the forecast of {name} changed")

    def wake_placer(self) -> None:
        if self.placer is not None:
            self.placer.wake.set()

    # -- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        self.tasks += [
            asyncio.create_task(self.queue.run_timers(), name="queue-timers"),
            asyncio.create_task(self._tick(), name="member-outages"),
            asyncio.create_task(self._collect_orphans(), name="orphan-collector"),
            *[asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(WORKERS)],
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            uid = await self.queue.get()
            try:
                await self.reconcile(uid)
                self.failures.pop(uid, None)
            except Conflict:
                await self._reread(uid)
                self.queue.add(uid)
            except Exception as exc:  # transient: back off with jitter, never give up silently
                count = self.failures[uid] = self.failures.get(uid, 0) + 1
                delay = min(60.0, 0.5 * 2 ** min(count, 7)) * (0.5 + random.random())
                log.warning("job %s: %s (retry in %.1fs)", uid, status_message(exc), delay)
                self.queue.add_after(uid, delay)
            finally:
                self.queue.done(uid)

    async def _reread(self, uid: str) -> None:
        entry = self.jobs.get(uid)
        if entry is None or self.fleet.hub is None:
            return
        body = await self.fleet.run(self.fleet.hub.get_computejob, entry.namespace, entry.name)
        if body is None:  # gone from the hub (its DELETED event may never come): forget it
            self._forget(uid)
            return
        entry.resource_version = ""  # whatever we held, the hub's word wins
        entry.update(body)

    async def _tick(self) -> None:
        """Once a second: jobs on members that are down past their grace period."""
        while True:
            await asyncio.sleep(1.0)
            down: dict[str, float] = {
                name: state.down_since
                for name, state in self.fleet.members.items()
                if not state.ready and state.down_since is not None
            }
            down.update(self.fleet.removed)
            if not down:
                continue
            now = time.monotonic()
            for uid, entry in self.jobs.items():
                since = down.get(entry.cluster or "")
                if since is None or entry.finished or entry.outage == since:
                    continue
                _, grace = entry.failover(self.options.grace_period)
                if now - since >= grace:
                    entry.outage = since
                    self.queue.add(uid)

    # -- one job --------------------------------------------------------------------------

    def situation(self, entry: Entry) -> Situation:
        status = entry.status
        remote = status.get("remote") or {}
        policy, grace = entry.failover(self.options.grace_period)
        member = Member(Health.UNKNOWN)
        if remote.get("cluster"):
            member = self.fleet.view(str(remote["cluster"]), entry.uid, remote.get("name"))
        stale = {
            str(c.get("cluster")): self.fleet.view(str(c.get("cluster")), entry.uid, c.get("name"))
            for c in status.get("staleCopies") or []
        }
        listed = {str(remote.get("cluster"))} | set(stale)
        others = tuple(
            c
            for c in self.fleet.copies_of(entry.uid)
            if c.cluster not in listed
            and self.fleet.view(c.cluster, entry.uid).health == Health.READY
        )
        clock = self.options.clock()
        return Situation(
            status,
            entry.generation,
            policy,
            grace,
            now_rfc3339(),
            member,
            stale,
            others,
            entry.digest(),
            clock,
            self._room(entry, clock),
            self.options.max_replans,
        )

    def _room(self, entry: Entry, clock: float) -> Room:
        """For a due Deferred job only: may its planned member take it now (FleetState)?"""
        status = entry.status
        deferral = status.get("deferral") or {}
        if (
            status.get("phase") != Phase.DEFERRED.value
            or not deferral
            or clock < machine.seconds_of(deferral.get("start"))
        ):
            return machine.ROOM
        try:
            request = entry.request(self.pod_policy)
        except InvalidJob:
            return machine.ROOM  # nothing to judge it by: released as planned
        cluster = str(deferral.get("cluster"))
        state = self.capacity.state(self.fleet.generation, self.fleet.snapshots)
        own = self.capacity.reservations.get(entry.uid)
        return room_now(state, cluster, request, held=own is not None and own.cluster == cluster)

    async def reconcile(self, uid: str) -> None:
        gone = self.gone.pop(uid, None)
        if gone is not None:
            try:
                await self._remove_copies(gone)
            except Exception:
                self.gone[uid] = gone  # tried again after the worker's backoff
                raise
            self.writer.forget(uid)
            self._drop_wake_ups(uid)
            self.capacity.release(uid)
            self.decided.pop(uid, None)
            metrics.track_phase(uid, None, None)
            return
        entry = self.jobs.get(uid)
        if entry is None:
            return
        if entry.deleting:
            await self._remove_copies(entry)
            await self._drop_legacy_finalizer(entry)
            return
        if LEGACY_FINALIZER in entry.finalizers:
            await self._drop_legacy_finalizer(entry)
        replan = self.replans.pop(uid, None)
        if replan is not None:
            await self._replan(entry, *replan)
        await self.carry_out(entry, machine.step(self.situation(entry)))

    async def _replan(
        self, entry: Entry, plan: Any, basis: dict[str, Any], why: str, joint: bool = False
    ) -> None:
        """Record a new plan for a Deferred job, if the record is still the one it replaces
        (``joint``: a move of the hourly joint plan, counted apart from its own re-plans)."""
        if entry.status.get("phase") != Phase.DEFERRED.value:
            return
        if dict(entry.status.get("deferral") or {}) != basis:
            return
        replans = int(basis.get("replans") or 0)
        deferral = plan.deferral(replans) or {
            **basis,
            "cluster": plan.cluster,
            "start": machine.rfc3339_of(self.options.clock()),
            "reasons": plan.timed.reasons()[:4],
        }
        step = machine.replanned(
            entry.status,
            now_rfc3339(),
            cluster=plan.cluster,
            deferral=deferral,
            placement=plan.placement(now_rfc3339()),
            message=why,
            joint=joint,
        )
        await self.carry_out(entry, step)
        metrics.DECISIONS.labels(outcome="replanned").inc()

    def _drop_wake_ups(self, uid: str) -> None:
        """Released or gone: its queued wake-ups, if they come, find nothing to do."""
        self.wakes.pop(uid, None)
        self.rechecks.pop(uid, None)

    async def carry_out(self, entry: Entry, step: Step) -> None:
        released = machine.released(step)
        if released:
            # Reserved before the hub write (nothing awaited since the room was judged), so a
            # second job released meanwhile cannot be judged to fit in the same room.
            self._reserve_now(entry)
        if step.patch:
            try:
                await self.write(
                    entry, step.patch, conditional=step.conditional, progress=step.progress
                )
            except BaseException:
                if released:
                    self.capacity.release(entry.uid)
                raise
        # A Deferred job's start and its latest start: each one wake-up in the queue's timer
        # heap, not one per look.
        for book, at in ((self.wakes, step.wake_at), (self.rechecks, step.recheck_at)):
            if at is not None and book.get(entry.uid) != at:
                book[entry.uid] = at
                self.queue.add_at(entry.uid, at)
        if released:
            self._drop_wake_ups(entry.uid)
            self.wake_placer()
        if entry.finished and entry.uid in self.capacity.reservations:
            # Its pods hold no room any more; a probe may never have counted them (a short
            # job's pods can come and go between two probes).
            self.capacity.release(entry.uid)
            self.wake_placer()
        if step.final:
            # Not retried until the spec or the fleet moves past what the refusal was judged
            # on: ``entry.blocked`` was set then (``_create``), not here after the write. Set
            # here, a fleet that moved while a slow hub took the write passed for the
            # refusal's own, and the job waited for the next change (on a quiet fleet, for ever).
            self.capacity.release(entry.uid)
        for action in step.actions:
            await self.act(entry, action)
        if step.final and entry.finished:
            self.writer.forget(entry.uid)  # nothing repeats on a finished job: no need to dedup

    def _reserve_now(self, entry: Entry) -> None:
        """A released Deferred job takes capacity now: held until a probe counts its pods."""
        # The planned cluster (a Hub member's child), as the FleetState names it.
        cluster = (entry.status.get("deferral") or {}).get("cluster") or entry.cluster
        try:
            request = entry.request(self.pod_policy)
        except InvalidJob:
            return
        if cluster:
            self.capacity.reserve(entry.uid, str(cluster), request)

    async def write(
        self, entry: Entry, patch: dict[str, Any], *, conditional: bool, progress: bool = False
    ) -> None:
        """Status to the hub: now and conditionally, or coalesced; the cache follows at once."""
        uid = entry.uid
        if conditional:
            body = await self.writer.write_now(
                uid, entry.namespace, entry.name, patch, entry.resource_version
            )
            if body is None:
                raise Conflict("the ComputeJob is gone")
            entry.update(body)
        else:
            # News for the user (a phase, a stale copy's record, a Warning) leaves in 0.5 s;
            # progress inside a phase (Dispatched, pod counts) waits up to PROGRESS_LINGER_S
            # and usually leaves with the next phase.
            linger = PROGRESS_LINGER_S if progress else None
            self.writer.write_later(
                uid,
                entry.namespace,
                entry.name,
                patch,
                lambda body: self._written(uid, body),
                linger=linger,
            )
            entry.status = {**entry.status, **patch}
        metrics.track_phase(uid, entry.phase, entry.cluster)
        self._track(entry)

    def _written(self, uid: str, body: dict[str, Any] | None) -> None:
        entry = self.jobs.get(uid)
        if entry is not None and body is not None:
            entry.update(body)
            self._track(entry)

    async def act(self, entry: Entry, action: Action) -> None:
        if action.do == Do.EVENT:
            ref = JobRef(entry.namespace, entry.name, entry.uid)
            self.writer.event(ref, action.kind, action.reason, action.message)
            level = logging.WARNING if action.kind == "Warning" else logging.INFO
            log.log(level, "%s: %s", action.reason, action.message, extra={"k8s_ref": entry.ref()})
        elif action.do == Do.PLACE and self.placer is not None:
            outcome = self.decided.pop(entry.uid, None)
            if isinstance(outcome, Step):  # not placed: the Pending condition and Event
                await self.carry_out(entry, outcome)
                self.placer.add(entry)
            elif outcome is not None:
                await self.placer.record(entry, outcome)
            else:
                self.placer.add(entry)
        elif action.do == Do.REPLAN and self.placer is not None:
            self.placer.replan(entry, f"no room at its start: {action.message}")
        elif action.do == Do.CREATE:
            await self._create(entry, action)
        else:
            await self._member_call(action)

    async def _create(self, entry: Entry, action: Action) -> None:
        try:
            hub, template = self.options.hub_name, self.options.tenant_namespace_template
            body = remote_body(self.fleet, entry, action.cluster, action.attempt, hub, template)
            if action.suspend and body["kind"] == "Job":  # Deferred: held until its start
                # (a child hub's ComputeJob carries spec.timing and plans its own start)
                body["spec"]["suspend"] = True
            tenant = tenant_for(entry.namespace, hub, self.pod_policy, template)
            client = self.fleet.client(action.cluster)
            remote = await self.fleet.run(create_or_adopt, client, body, tenant)
        except Exception as exc:
            if not final(exc):
                raise
            message = f"{action.cluster} refused Job {action.namespace}/{action.name}: "
            foreign = isinstance(exc, ForeignNamespace)
            reason = ForeignNamespace.reason if foreign else "DispatchRefused"
            entry.blocked = self.placer.key(entry, room=False) if self.placer else None
            await self.carry_out(
                entry,
                machine.refused(entry.status, now_rfc3339(), reason, message + status_message(exc)),
            )
            metrics.DECISIONS.labels(outcome="refused").inc()
            return
        copy = copy_of(action.cluster, remote.body, self.options.hub_name)
        self.fleet.created(action.cluster, entry.uid, copy)
        entry.drop_parsed()
        CLOCK.note("first_member_job")
        if entry.created:
            metrics.DISPATCH_SECONDS.observe(max(time.time() - entry.created, 0.0))
        self.queue.add(entry.uid)  # the next step records Dispatched (coalesced)

    async def _member_call(self, action: Action) -> None:
        client = self.fleet.client(action.cluster)
        if action.do == Do.SET_TTL:
            patch = {"spec": {"ttlSecondsAfterFinished": int(self.options.finished_job_ttl)}}
            await self.fleet.run(client.patch_job, action.namespace, action.name, patch)
        elif action.do == Do.RESUME:
            await self.fleet.run(
                client.patch_job, action.namespace, action.name, {"spec": {"suspend": False}}
            )
            log.info("released %s/%s on %s", action.namespace, action.name, action.cluster)
        elif action.do == Do.SUSPEND:
            await self.fleet.run(
                client.patch_job, action.namespace, action.name, {"spec": {"suspend": True}}
            )
            log.info(
                "suspended stale copy %s/%s on %s", action.namespace, action.name, action.cluster
            )
        elif action.do == Do.DELETE:
            await self.fleet.run(client.delete_job, action.namespace, action.name)
            log.info(
                "deleted stale copy %s/%s on %s", action.namespace, action.name, action.cluster
            )

    # -- deletion and orphans ---------------------------------------------------------------

    async def _remove_copies(self, entry: Entry) -> None:
        """Delete every copy of a deleted job on members that answer; the rest are collected
        as orphans when their member's watch shows them again."""
        for copy in self.fleet.copies_of(entry.uid):
            if self.fleet.view(copy.cluster, entry.uid).health != Health.READY:
                continue
            client = self.fleet.client(copy.cluster)
            await self.fleet.run(client.delete_job, copy.namespace, copy.name)

    async def _drop_legacy_finalizer(self, entry: Entry) -> None:
        if LEGACY_FINALIZER not in entry.finalizers or self.fleet.hub is None:
            return
        kept = [f for f in entry.finalizers if f != LEGACY_FINALIZER]
        patch = {"metadata": {"finalizers": kept, "resourceVersion": entry.resource_version}}
        try:
            await self.fleet.run(
                self.fleet.hub.patch_computejob, entry.namespace, entry.name, patch
            )
        except Exception as exc:
            if http_status(exc) == 409:
                raise Conflict("finalizers changed") from None
            if http_status(exc) != 404:
                raise

    async def _collect_orphans(self) -> None:
        """Jobs of this hub on members whose ComputeJob no longer exists: deleted, after the
        hub confirms (a GET by name) that the job is really gone, not just not cached yet."""
        while True:
            await asyncio.sleep(10.0)
            for key, copy in list(self.orphans.items()):
                self.orphans.pop(key, None)
                cluster, uid = key
                if uid in self.jobs or self.fleet.hub is None:
                    continue
                if self.fleet.view(cluster, uid).health != Health.READY:
                    self.orphans[key] = copy  # later, when it answers
                    continue
                try:
                    await self._collect_one(cluster, uid, copy)
                except Exception as exc:  # next round
                    log.warning("orphan %s/%s on %s: %s", copy.namespace, copy.name, cluster, exc)
                    self.orphans[key] = copy

    async def _collect_one(self, cluster: str, uid: str, copy: Copy) -> None:
        assert self.fleet.hub is not None
        namespace, _, name = copy.source.partition("/")
        body = None
        if namespace and name:
            body = await self.fleet.run(self.fleet.hub.get_computejob, namespace, name)
        if body is not None and (body.get("metadata") or {}).get("uid") == uid:
            self.observe("MODIFIED", body)  # it exists: the cache was behind
            return
        client = self.fleet.client(cluster)
        await self.fleet.run(client.delete_job, copy.namespace, copy.name)
        log.info(
            "deleted orphan Job %s/%s on %s (its ComputeJob is gone)",
            copy.namespace,
            copy.name,
            cluster,
        )


class _NoCopies:
    copies: ClassVar[dict[str, Copy]] = {}
