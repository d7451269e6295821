"""The joint re-plan of Deferred jobs: once an hour, all of them planned together.

Each windowed job is planned alone when it arrives, first come first served
(``TimeScheduler.plan``): an early job takes the greenest slot even when a later one would
have saved more there. Once per ``--joint-replan-interval`` (an hour by default, a few
seconds past the turn of the hour on the planning clock, when the forecasts' hour has moved)
the placer hands every Deferred job that may still move to the joint plan: the assignment of
jobs to (member, start) that costs least in carbon and electricity together over the room
known now (free now, plus what running windowed jobs give back at their declared ends;
scheduling/joint.py builds it, scheduling/batch_plan.py solves it; the simulator's
``computegrid-timed-joint`` runs the same code). The LP relaxation is solved and rounded to
whole jobs, surest first, each at its option of largest share that still fits, from the
next hour slot on, the pools' allocatable capacity less the reserve and the other promises
(in the slot of now, what is free now): so a plan may count on room that running work gives
back before a later start (the start checks it; a start without room is planned again),
never on more than the pools hold, and never starts now what does not fit now. A job whose
option changed is re-planned the ordinary way (``Controller._replan``: its record, an Event),
counted in its ``deferral.jointMoves``, apart from the ``replans`` its own reasons use up;
one whose best start is now is released at once.

What keeps it safe on a live hub: the inputs are read in one go on the event loop; the solve
runs in a worker thread (HiGHS lets the event loop run meanwhile) under a time limit, and no
plan found changes nothing; a plan is applied only to jobs whose record is still the one it
was made from. Jobs left out (due, decided and not yet written, or with a re-plan of their
own pending) keep their promises, and the room those hold is taken out of what the batch may
use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from computegrid.handlers import metrics
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import InvalidJob
from computegrid.handlers.timing import Plan, reservation_of
from computegrid.scheduling import Decision, JobRequest, TimedDecision, to_window
from computegrid.scheduling.batch_plan import BatchJob, BatchPlan, plan_batch
from computegrid.scheduling.joint import grams_per_cny, job_options, slot_room, static_mask
from computegrid.scheduling.state import FloatArray

if TYPE_CHECKING:
    from computegrid.handlers.placer import InTime, Placer

log = logging.getLogger("computegrid.joint")
# Past the turn of the interval: the members' forecasts have moved to the new hour by then.
DELAY_S = 5.0
# Each solve's wall-clock limit. The LP relaxation rounded, not whole jobs (a MILP): in the
# simulator's mirror of the operator (docs/sim.md, session 12) the rounded LP was 1.8 % lower
# in carbon than the MILP at 20,000 jobs, where the MILP stopped at its limit in 139 of 188
# solves, and level at 5,000; an LP of thousands of options solves in a fraction of a second.
TIME_LIMIT_S = 5.0


@dataclass(frozen=True)
class Candidate:
    """A Deferred job in the batch: its record and what it was planned from."""

    entry: Entry
    request: JobRequest
    deferral: dict[str, Any]
    duration_s: float


@dataclass(frozen=True)
class Round:
    """One joint re-plan's inputs, read at ``now_s``."""

    in_time: InTime
    candidates: dict[str, Candidate]
    batch: list[BatchJob]
    room: FloatArray  # [slots, clusters, types, resources]: free now and what running
    # windowed jobs give back at their declared ends: what the LP plans on
    cap: FloatArray  # the same shape: the pools' allocatable, what the rounding keeps


def until_next(now_s: float, interval_s: float) -> float:
    """Seconds from ``now_s`` to the next multiple of ``interval_s``, plus the delay."""
    return interval_s - now_s % interval_s + DELAY_S


def gather(placer: Placer, in_time: InTime) -> Round | None:
    """Every Deferred job that may still move, its options, and the room the others leave."""
    state, now_s = in_time.state, in_time.now_s
    try:
        g_per_cny = grams_per_cny(placer.scheduler.policy)
    except ValueError as exc:
        log.warning("no joint re-plan under this policy: %s", exc)
        return None
    timed = placer.timed
    candidates: dict[str, Candidate] = {}
    batch: list[BatchJob] = []
    for uid, promise in in_time.promises.items():
        found = _candidate(placer, uid, promise.start_s, now_s)
        if found is None:
            continue
        window = to_window(found.entry.job(), now_s)
        if window.deadline_s is None:  # a latency-critical job never waits: nothing to move
            continue
        options = job_options(
            uid,
            found.request,
            deadline_s=window.deadline_s,
            duration_s=found.duration_s,
            not_before_s=window.not_before_s,
            allowed=static_mask(timed.scheduler, found.request, state),
            state=state,
            forecast=in_time.forecast,
            now_s=now_s,
            g_per_cny=g_per_cny,
            horizon_h=timed.horizon_h,
        )
        if options is not None:
            candidates[uid] = found
            batch.append(options)
    if not batch:
        return None
    kept = (reservation_of(state, p) for u, p in in_time.promises.items() if u not in candidates)
    guard = timed.headroom
    held = [r for r in kept if r is not None]
    back = (reservation_of(state, r) for r in in_time.releases.values())
    releases = [r for r in back if r is not None]  # running windowed jobs' declared ends
    reserve = float(getattr(guard, "reserve", 0.0)) if guard is not None else 0.0
    room = slot_room(state, now_s, reserve=reserve, horizon_h=timed.horizon_h, held=held,
                     releases=releases)  # fmt: skip
    cap = slot_room(state, now_s, reserve=reserve, horizon_h=timed.horizon_h, held=held,
                    allocatable=True)  # fmt: skip
    return Round(in_time, candidates, batch, room, cap)


def _candidate(placer: Placer, uid: str, start_s: float, now_s: float) -> Candidate | None:
    """The job if the joint plan may move it: Deferred on the hub, not due, no re-plan of its
    own pending. Its own re-plans' bound (--max-replans) does not bind the joint plan, which
    moves a job at most once a round: bounded at 3 moves, the operator's mirror in the
    simulator lost most of the joint plan's gain (docs/sim.md, session 11)."""
    controller = placer.controller
    entry = controller.jobs.get(uid)
    if entry is None or uid not in controller.deferred or start_s <= now_s:
        return None
    if uid in controller.replans or uid in controller.decided or uid in placer.replanning:
        return None
    deferral = dict(entry.status.get("deferral") or {})
    if not deferral:
        return None
    try:
        request = entry.request(controller.pod_policy)
        timing = entry.job().spec.timing
    except InvalidJob:
        return None
    if timing is None:
        return None
    return Candidate(entry, request, deferral, timing.duration_s)


def apply(placer: Placer, found: Round, plan: BatchPlan) -> int:
    """Queue a re-plan for each job whose joint option differs from its record; how many."""
    controller = placer.controller
    why = f"{len(found.batch)} Deferred job(s) planned together"
    moved = 0
    for uid, (index, start_s) in plan.choice.items():
        candidate = found.candidates[uid]
        if controller.jobs.get(uid) is not candidate.entry or uid in controller.replans:
            continue  # changed while the solver ran: its own path decides
        chosen = _plan_at(placer, found.in_time, candidate, index, start_s)
        if chosen is None or not chosen.differs_from(candidate.deferral):
            continue
        controller.replans[uid] = (chosen, candidate.deferral, why, True)
        controller.queue.add(uid)
        moved += 1
    return moved


def _plan_at(
    placer: Placer, in_time: InTime, candidate: Candidate, index: int, start_s: float
) -> Plan | None:
    """The job's own time decision, moved to the joint plan's (cluster, start): its reasons,
    its hour-by-hour figures and its score there (None if the job's own view has no such
    option, e.g. a start the forecast no longer covers)."""
    entry = candidate.entry
    window = to_window(entry.job(), in_time.now_s)
    own = placer.timed.plan(
        candidate.request, in_time.state, window, in_time.forecast, later_room_judged=True
    )
    if not isinstance(own, TimedDecision):
        return None
    at = np.flatnonzero(np.abs(own.starts - start_s) < 1e-6)
    if not len(at) or not np.isfinite(own.totals[int(at[0]), index]):
        return None
    score = float(own.totals[int(at[0]), index])
    timed = dataclasses.replace(own, index=index, start_s=float(start_s), score=score)
    return Plan(Decision(own.evaluation, index, score), timed, candidate.duration_s)


async def replan_jointly(placer: Placer) -> int:
    """One joint re-plan of the Deferred jobs; how many got a new plan."""
    from computegrid.handlers.placer import InTime  # the placer imports this module

    controller = placer.controller
    fleet = controller.fleet
    state = controller.capacity.state(fleet.generation, fleet.snapshots)
    found = gather(placer, InTime.of(placer, state))
    if found is None:
        return 0
    plan = await asyncio.to_thread(
        plan_batch,
        found.batch,
        found.room,
        found.in_time.now_s,
        integer=False,
        rounded=True,
        round_room=found.cap,
        time_limit_s=TIME_LIMIT_S,
    )
    if plan is None:
        metrics.JOINT_REPLANS.labels(outcome="no-plan").inc()
        log.warning("the joint plan of %d Deferred job(s) found no plan in time", len(found.batch))
        return 0
    moved = apply(placer, found, plan)
    metrics.JOINT_REPLANS.labels(outcome="planned").inc()
    metrics.JOINT_MOVED.inc(moved)
    log.info(
        "joint plan of %d Deferred job(s): %d moved, %s in %.2f s (%d variables)",
        len(found.batch), moved, plan.status, plan.solve_s, plan.variables,
    )  # fmt: skip
    return moved
