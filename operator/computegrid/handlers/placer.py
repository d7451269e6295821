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

A job with ``spec.timing`` is planned in space and time (``TimeScheduler.plan`` on the
members' forecasts, honouring the capacity promised to Deferred jobs: handlers/timing.py);
a plan that starts later makes it Deferred. Deferred jobs are planned again (``replan``), at
most ``--max-replans`` times each, when a member's forecast changes, when the fleet changed so
that a promise cannot be kept (``_check_promises``: a member lost or NotReady, nodes gone; run
once per fleet generation, in memory), and when one is due but its member cannot take it
(the state machine asks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from computegrid.api.conditions import now_rfc3339
from computegrid.dispatch import remote_name, tenant_namespace
from computegrid.handlers import joint, metrics
from computegrid.handlers.controller import Controller
from computegrid.handlers.federation import refusal
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import (
    InvalidJob,
    decision_message,
    diagnosis_message,
    placement_status,
)
from computegrid.handlers.queue import sleep_until
from computegrid.handlers.startclock import CLOCK
from computegrid.handlers.startgate import StartGate
from computegrid.handlers.timing import (
    Plan,
    Promise,
    book_of,
    broken,
    fleet_forecast,
    hold,
    promise_of,
    release_of,
)
from computegrid.lifecycle import Health, machine
from computegrid.scheduling import (
    Decision,
    FleetForecast,
    FleetState,
    JobRequest,
    ReservationBook,
    Scheduler,
    TimedDecision,
    TimeScheduler,
    to_window,
)
from computegrid.scheduling.run_profile import FinishedRun, RunProfile
from computegrid.scheduling.timeshift import schedule_over_run

log = logging.getLogger("computegrid.placer")
BATCH = 500


@dataclass
class Placer:
    controller: Controller
    scheduler: Scheduler
    gate: StartGate = field(default_factory=StartGate)  # the first placement waits for members
    waiting: dict[str, Entry] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    news: asyncio.Event = field(default_factory=asyncio.Event)  # a member's first probe or list
    problems: set[str] = field(default_factory=set)  # members that cannot be probed at all
    task: asyncio.Task[Any] | None = None
    joint_task: asyncio.Task[Any] | None = None  # the joint re-plan of Deferred jobs
    # Whether this replica follows the hub's ComputeJobs (a paused standby does not: its cache
    # is stale, so its joint re-plan must not act); set by the operator's start.
    following: Callable[[], bool] = lambda: True
    replanning: dict[str, tuple[Entry, str]] = field(default_factory=dict)  # uid → (job, why)
    _timed: TimeScheduler | None = None
    _checked: int = -1  # the fleet generation the promises were last checked against
    _shapes: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # cluster → what it was
    # Run times of finished jobs by shape: a job without a window is scored over the run such
    # work makes, not on the figures of the hour it starts in (the simulator's mirror of the
    # operator gained with it: docs/sim.md, session 14).
    run_profile: RunProfile = field(default_factory=RunProfile)

    def __post_init__(self) -> None:
        self.controller.placer = self

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="placer")
        if self.controller.options.joint_replan_interval > 0:
            self.joint_task = asyncio.create_task(self._joint_loop(), name="joint-replan")

    async def stop(self) -> None:
        tasks = [t for t in (self.task, self.joint_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _joint_loop(self) -> None:
        """At each turn of the interval on the planning clock: the joint re-plan of every
        Deferred job that may still move (handlers/joint.py)."""
        options = self.controller.options
        while True:
            now_s = options.clock()
            turn = now_s + joint.until_next(now_s, options.joint_replan_interval)
            await sleep_until(options.clock, turn)  # a suspended machine: on time at resume
            if not self.following() or not self.controller.deferred or not self.gate.opened:
                continue
            try:
                await joint.replan_jointly(self)
            except Exception:  # a bug must not stop the next round: log, count, go on
                metrics.JOINT_REPLANS.labels(outcome="failed").inc()
                log.exception("joint re-plan failed")

    def key(self, entry: Entry, *, room: bool = True) -> tuple[Any, ...]:
        """What a refused placement depended on: the job's spec, the fleet and, for a refusal
        for want of room, the room that ended reservations gave back (which no probe may ever
        show). A member's refusal of the Job itself (``room=False``) does not look again for
        room that came back elsewhere: every dispatch's reservation ends within minutes."""
        controller = self.controller
        freed = controller.capacity.freed if room else None
        return (entry.generation, controller.fleet.generation, freed)

    def is_blocked(self, entry: Entry) -> bool:
        """Refused, and nothing it depended on has moved since."""
        blocked = entry.blocked
        return blocked is not None and blocked == self.key(entry, room=blocked[2] is not None)

    def add(self, entry: Entry) -> None:
        CLOCK.note("first_waiting")
        self.waiting[entry.uid] = entry
        self.wake.set()

    def replan(self, entry: Entry, why: str) -> None:
        """Plan a Deferred job again (bounded by --max-replans until its latest start: see
        ``_replans_used_up``); ``why`` goes into its Event."""
        self.replanning[entry.uid] = (entry, why)
        self.wake.set()

    @property
    def timed(self) -> TimeScheduler:
        """The time-aware core on the policy in force (rebuilt when the policy changes)."""
        if self._timed is None or self._timed.policy is not self.scheduler.policy:
            # Promises yield to every job without a window, as to a latency-critical one: it
            # cannot wait, a Deferred job can (its start checks the room and re-plans); the
            # simulator's mirror of the operator gained with it (docs/sim.md, session 12).
            self._timed = TimeScheduler(
                self.scheduler.policy, unknown_run_h=0.0, run_profile=self.run_profile
            )
        return self._timed

    def fleet_forecast(self, state: FleetState, now_s: float) -> FleetForecast:
        """The members' forecasts on one hourly grid (flat figures where a member has none)."""
        members = self.controller.fleet.members
        found = {n: (m.forecast.forecast if m.forecast else None) for n, m in members.items()}
        return fleet_forecast(state, found, now_s)

    def ran(self, run: FinishedRun) -> None:
        """A job succeeded (seen finishing, or listed finished at a start): its shape's
        profile learns its run; every run told counts in the metric."""
        self.run_profile.record_shape(run.shape, run.run_s, run.ended_s)
        metrics.RUN_PROFILE_RUNS.inc()

    def member_news(self, name: str, what: str) -> None:
        """A member was probed ("probed") or its Jobs listed ("synced"): the gate may open."""
        CLOCK.member(name, what)
        if not self.gate.opened:
            self._members_known()  # judged now, so the start's steps are timed when they happen
            self.news.set()

    def _members_known(self) -> bool:
        """Whether placement may begin (handlers/startgate.py); notes the start's steps."""
        if self.gate.opened:
            return True
        verdict = self.gate.check(self.controller.fleet.members, self.problems)
        if verdict.probed:
            CLOCK.note("members_probed")
        if verdict.synced:
            CLOCK.note("members_synced")
        if verdict.open:
            CLOCK.note("members_known")
            if verdict.why:
                log.warning("placing without waiting longer for %s", verdict.why)
        return verdict.open

    async def _await_members(self) -> None:
        """Until the gate opens: woken by each member's news, or by the gate's next bound."""
        while not self._members_known():
            self.news.clear()
            if self.gate.expected is None:
                if not await self.list_members():
                    await asyncio.sleep(1.0)
                continue  # judged again at once on what the list says
            with contextlib.suppress(TimeoutError):  # a bound passed: judge again
                await asyncio.wait_for(self.news.wait(), self.gate.next_deadline() + 0.01)

    async def list_members(self) -> bool:
        """The MemberClusters the gate waits for: listed at start, and again by the placer
        when that failed; False when the hub did not answer."""
        hub = self.controller.fleet.hub
        if hub is None:
            self.gate.expected = set()
            return True
        try:
            listed = await self.controller.writer.call(hub.list_memberclusters, kind="read")
        except Exception as exc:  # the hub is down: nothing can be placed anyway
            log.warning("MemberClusters not listed yet: %s", exc)
            return False
        self.gate.expected = {str(mc["metadata"]["name"]) for mc in listed}
        return True

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._until_room_may_free())
            self.wake.clear()
            await self._await_members()
            try:
                more = self._drain()
            except Exception:  # a bug must not stop placement for good: log, next wake
                log.exception("placement round failed")
                more = False
            if more:
                self.wake.set()
            await asyncio.sleep(0)

    def _until_room_may_free(self) -> float | None:
        """Seconds until the oldest reservation expires, while jobs wait for room: nothing
        else may wake the placer when the fleet is quiet. Half a second late, so a round that
        fails before it looks at the reservations cannot spin the loop."""
        expiry = self.controller.capacity.next_expiry
        if not self.waiting or expiry == math.inf:
            return None
        return max(expiry - time.monotonic(), 0.0) + 0.5

    def _drain(self) -> bool:
        """Decide for up to BATCH waiting jobs; True when more are waiting."""
        controller = self.controller
        fleet = controller.fleet
        state = controller.capacity.state(fleet.generation, fleet.snapshots)
        order = sorted(self.waiting.values(), key=lambda e: e.priority)
        in_time: InTime | None = None  # made on the first windowed job of the round
        forecast: FleetForecast | None = None  # made on the first job scored over its run
        tried = 0
        if fleet.generation != self._checked:
            self._checked = fleet.generation
            if controller.deferred:
                self._check_promises(state)
        if self.replanning:
            in_time = InTime.of(self, state)
            self._replan_all(state, in_time)
        for entry in order:
            if tried >= BATCH:
                return True
            uid = entry.uid
            current = controller.jobs.get(uid)
            if current is not entry or entry.deleting or entry.status.get("remote"):
                self.waiting.pop(uid, None)
                continue
            if self.is_blocked(entry):
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
            timing = entry.job().spec.timing
            result: Decision | Plan | Any
            if timing is not None:
                in_time = in_time or InTime.of(self, state)
                result = in_time.plan(entry, request, timing.duration_s)
            elif self.run_profile.weights(request) is None:  # the figures of now
                result = self.scheduler.schedule(request, state)
            else:  # the members' figures averaged over the run such work makes
                now_s = controller.options.clock()
                forecast = forecast or self.fleet_forecast(state, now_s)
                result = schedule_over_run(
                    self.scheduler, request, state, forecast, now_s, self.run_profile
                )
            metrics.SCHEDULING_SECONDS.observe(time.perf_counter() - started)
            if not isinstance(result, Decision | Plan):
                self._refuse(
                    entry, machine.UNSCHEDULABLE, diagnosis_message(result), "unschedulable"
                )
                continue
            if isinstance(result, Plan) and result.deferred:
                assert in_time is not None
                in_time.promise(uid, result, request)  # held in time, not now
            else:
                cluster = result.cluster if isinstance(result, Plan) else result.cluster.name
                controller.capacity.reserve(uid, cluster, request)
            controller.decided[uid] = result
            entry.drop_parsed()  # it may wait long for its record: parsed again then
            CLOCK.note("first_decision")
            self.waiting.pop(uid, None)
            controller.queue.add(uid)
        return False

    @staticmethod
    def _replans_used_up(deferral: dict[str, Any], limit: int, now_s: float) -> bool:
        """A job past --max-replans keeps its plan and waits for room on its member, until its
        latest start: from then on it is planned again, to start wherever there is room now (a
        late window starts now), rather than wait for its own member past its deadline."""
        used = int(deferral.get("replans") or 0) >= limit
        return used and not machine.past_latest_start(deferral, now_s)

    def _replan_all(self, state: FleetState, in_time: InTime) -> None:
        """Deferred jobs asked to plan again (a forecast, a promise broken, no room at the start):
        a new plan when it differs."""
        controller = self.controller
        limit = controller.options.max_replans
        for uid, (entry, why) in list(self.replanning.items()):
            del self.replanning[uid]
            deferral = dict(entry.status.get("deferral") or {})
            if (
                controller.jobs.get(uid) is not entry
                or entry.status.get("phase") != "Deferred"
                or not deferral
                or self._replans_used_up(deferral, limit, in_time.now_s)
            ):
                continue
            try:
                request = entry.request(controller.pod_policy)
                timing = entry.job().spec.timing
            except InvalidJob:
                continue
            if timing is None:
                continue
            plan = in_time.plan(entry, request, timing.duration_s, leave_out=uid)
            if isinstance(plan, Plan) and plan.differs_from(deferral):
                controller.replans[uid] = (plan, deferral, why, False)
                controller.queue.add(uid)
                in_time.repromise(uid, plan, request)  # the next re-plan of the round sees it
            elif not isinstance(plan, Plan):
                log.info("no new plan for Deferred job %s (%s): it keeps its plan", uid, why)

    def _check_promises(self, state: FleetState) -> None:
        """A new fleet generation: re-plan the Deferred jobs whose promise cannot be kept, and
        look again at the due ones that wait for room.

        Cheap on purpose (it runs on every probe that moved capacity): the promises are judged
        only on clusters whose readiness or allocatable resources changed since the last check
        (a probe that only moved pods' requests changes neither), all in memory; due jobs are
        found by the wake-up already queued for them.
        """
        controller = self.controller
        now_s = controller.options.clock()
        for uid in controller.deferred:
            wake = controller.wakes.get(uid)
            if wake is not None and wake <= now_s:
                controller.queue.add(uid)  # due and still Deferred: room may be back
        shapes = {
            name: (bool(state.ready[i]), state.cluster_alloc[i].tobytes())
            for i, name in enumerate(state.names)
        }
        before, self._shapes = self._shapes, shapes
        changed = {n for n in shapes.keys() | before.keys() if shapes.get(n) != before.get(n)}
        if before and not changed:
            return
        # The promises alone: a pool's allocatable must hold them, whatever running work gives
        # back (that room is not in the allocatable to begin with).
        in_time = InTime.of(self, state, with_releases=False)
        fleet = controller.fleet
        for uid, promise in in_time.promises.items():
            entry = controller.jobs.get(uid)
            if entry is None or uid not in controller.deferred or promise.start_s <= now_s:
                continue  # decided in this round, gone, or due (the start's own check decides)
            if before and promise.cluster not in changed and promise.cluster in shapes:
                continue
            member = fleet.member_of(promise.cluster)
            if fleet.view(member, uid).health == Health.UNKNOWN:
                continue  # not probed or not watched by this replica yet: nothing is certain
            why = broken(state, in_time.book, promise)
            if why:
                log.info("Deferred job %s: its promise cannot be kept: %s", uid, why)
                self.replan(entry, f"the promise cannot be kept: {why}")

    def _refuse(self, entry: Entry, reason: str, message: str, outcome: str) -> None:
        metrics.DECISIONS.labels(outcome=outcome).inc()
        entry.blocked = self.key(entry)
        step = machine.pending(entry.status, now_rfc3339(), reason, message)
        if step.patch or step.actions:  # written by the job's worker, in order with the rest
            self.controller.decided[entry.uid] = step
            self.controller.queue.add(entry.uid)

    async def record(self, entry: Entry, outcome: Decision | Plan) -> None:
        """Write the decision to the hub (conditionally), then create the Job: the step's
        actions run in the job's worker, which called us."""
        plan = outcome if isinstance(outcome, Plan) else None
        decision = outcome.decision if isinstance(outcome, Plan) else outcome
        attempts = int(entry.status.get("attempts") or 0)
        if any(c.attempt > attempts for c in self.controller.fleet.copies_of(entry.uid)):
            # A member's watch has since shown a copy no record names: adopt it instead.
            self.controller.capacity.release(entry.uid)
            self.controller.queue.add(entry.uid)
            return
        job = entry.job()
        cluster = self.controller.fleet.member_of(decision.cluster.name)  # a Hub's child: the hub
        options = self.controller.options
        namespace = tenant_namespace(
            entry.namespace, options.hub_name, options.tenant_namespace_template
        )
        name = remote_name(entry.namespace, entry.name, entry.uid)
        message = decision_message(decision)
        placement = placement_status(decision, now_rfc3339())
        deferral = None
        if plan is not None:
            placement = plan.placement(now_rfc3339())
            deferral = plan.deferral()
            if deferral is not None:
                message = f"{message}; deferred to {deferral['start']}"
        step = machine.placed(
            entry.status,
            now_rfc3339(),
            cluster=cluster,
            namespace=namespace,
            name=name,
            placement=placement,
            message=message,
            generation=job.metadata.generation or entry.generation,
            digest=entry.digest(),
            deferral=deferral,
            late=plan.late() if plan is not None else "",
        )
        try:
            await self.controller.carry_out(entry, step)
        except Exception:
            self.controller.capacity.release(entry.uid)
            raise
        finally:
            entry.drop_parsed()  # its create may wait long: parsed again then
        stale = entry.status.get("staleCopies") or []
        reschedule = int(entry.status.get("reschedules") or 0) > 0 and bool(stale)
        metrics.DECISIONS.labels(outcome="rescheduled" if reschedule else "scheduled").inc()
        if reschedule:
            metrics.RESCHEDULES.labels(from_cluster=str(stale[-1].get("cluster"))).inc()
        _, carbon, cost = decision.savings_per_hour()
        metrics.CARBON_SAVED.inc(max(carbon, 0.0))
        metrics.COST_SAVED.inc(max(cost, 0.0))


@dataclass
class InTime:
    """One placement round's view in time: the forecasts, the promises and the clock."""

    placer: Placer
    state: FleetState
    now_s: float
    forecast: FleetForecast
    promises: dict[str, Promise]
    book: ReservationBook  # the promises, and the room running windowed jobs give back
    releases: dict[str, Promise] = field(default_factory=dict)  # those jobs' declared ends

    @classmethod
    def of(cls, placer: Placer, state: FleetState, *, with_releases: bool = True) -> InTime:
        """``with_releases``: count the room running windowed jobs give back at their declared
        ends (planning); False: the promises alone (judging whether a pool still holds them)."""
        controller = placer.controller
        now_s = controller.options.clock()
        promises: dict[str, Promise] = {}
        for uid in controller.deferred:
            entry = controller.jobs.get(uid)
            found = promise_of(entry, controller.pod_policy) if entry is not None else None
            if found is not None:
                promises[uid] = found
        for uid, outcome in controller.decided.items():  # decided, not yet on the hub
            if isinstance(outcome, Plan) and outcome.deferred:
                promises[uid] = _promise(uid, outcome, outcome.decision.job)
        # Room a running windowed job gives back at its declared end counts for later starts,
        # as in the simulator's mirror of the operator (docs/sim.md, session 12); a job that
        # overruns its expectedDuration leaves a start without room, which re-plans.
        releases: dict[str, Promise] = {}
        offset = controller.options.clock_offset
        for uid, entry in controller.jobs.items() if with_releases else ():
            found = release_of(entry, controller.pod_policy, offset)
            if found is not None and found.end_s > now_s:
                releases[uid] = found
        forecast = placer.fleet_forecast(state, now_s)
        book = book_of(state, promises.values(), releases=releases.values())
        return cls(placer, state, now_s, forecast, promises, book, releases)

    def plan(
        self, entry: Entry, request: JobRequest, duration_s: float, leave_out: str = ""
    ) -> Plan | Any:
        """The (cluster, start) for a windowed job; a Diagnosis when nothing fits."""
        window = to_window(entry.job(), self.now_s)
        book = (
            book_of(self.state, self.promises.values(), leave_out, self.releases.values())
            if leave_out
            else self.book
        )
        result = self.placer.timed.plan(request, self.state, window, self.forecast, book)
        if not isinstance(result, TimedDecision):
            return result
        decision = Decision(result.evaluation, result.index, result.score)
        return Plan(decision, result, duration_s)

    def promise(self, uid: str, plan: Plan, request: JobRequest) -> None:
        """Hold a deferred plan's capacity for the rest of this round."""
        promise = _promise(uid, plan, request)
        self.promises[uid] = promise
        hold(self.book, self.state, promise)

    def repromise(self, uid: str, plan: Plan, request: JobRequest) -> None:
        """A re-planned job's promise moves; one that starts now holds its room from now for the
        rest of the round too (it is reserved only when released)."""
        self.book.remove(uid)
        self.promise(uid, plan, request)


def _promise(uid: str, plan: Plan, request: JobRequest) -> Promise:
    start = plan.timed.start_s
    return Promise(uid, plan.cluster, request, start, start + plan.duration_s)
