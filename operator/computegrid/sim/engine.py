"""The discrete-event replay: arrivals, completions and hourly power, in simulated time.

Events in time order; at one instant completions free capacity first, then the power figures
of the new hour reach the FleetState (``update_power``), then arrivals join the queue. The
queue is FIFO: after capacity frees, every waiting job is retried in arrival order (a job
that fits runs even if an earlier one still waits, i.e. first-fit rather than strict
head-of-line); a newly arrived job is tried once on arrival. Within one pass, a job shaped
exactly like one that just failed is not retried (it would fail the same way).

The placer decides on the live state; the engine reserves the capacity with
``FleetState.reserve`` and counts an overcommit if any node's free amount then goes below
zero (checked on the whole node array, independent of the reserve logic).

A time-aware placer (one with ``plan``, see ``sim/timed.py``) may answer a later start: the
job is then held (a deferred-start event) and at its start time the placer releases its
promise and the job starts on the planned cluster if its pods fit there, else it is planned
again from that moment (and queues if nothing fits). Deferred starts are processed after
completions and the hour's power figures, before arrivals.

Rolling re-plan: at every whole hour while jobs are held, a placer that says ``rolling``
(and offers ``replan``) is asked again for each held job (earliest planned start first) on
the fleet as it is then; it may move the job to a better (cluster, start), including "start
now", which lets deferred work take capacity that freed up after it was planned. The engine
keeps one current plan per held job (older heap entries are skipped).

Batch re-plan: a placer that says ``batch`` (``sim/batch.py``) is instead handed every held
job at once at each whole hour (``replan_batch``) and answers new plans for any of them; one
whose new start is now is started by the held-start step (per-node fit checked, else planned
again), the others are held at their new (cluster, start). A batch placer with
``replan_on_free_s`` > 0 is also asked when a completion frees room while jobs are held, at
most once per that many seconds (a whole hour's re-plan counts): room given back between
whole hours then goes to held work before an arrival takes it.

Re-plans used up: a placer with ``max_replans`` (the operator's ``--max-replans``) plans a held
job whose start found no room again only that many times. After that the job waits for room
on its planned cluster (the operator's ``WaitingForRoom``), started there when a completion
frees enough, until its latest start (deadline less run time), when it is planned once more
and starts wherever it fits (or queues); ``wait_past_latest_start`` keeps it waiting on its
cluster even then (the operator before session 15).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from computegrid.fleet_data.power import PowerCurves
from computegrid.scheduling import FleetState, JobRequest
from computegrid.scheduling.transfer import transfer_of
from computegrid.sim.placers import Placer, TimedPlacer
from computegrid.sim.trace import SimJob

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Replay:
    """Where and when each job ran (index ``-1``/NaN: never placed before the trace ended)."""

    policy: str
    cluster: IntArray
    start_s: FloatArray
    end_s: FloatArray
    latency_ms: FloatArray
    overcommits: int
    decisions: int
    deferred: int = 0  # jobs a time-aware placer held for a later start (at least once)
    # Held starts whose pods did not fit at the planned hour (the operator's NoRoomAtStart:
    # each one a re-plan, counted against --max-replans), and the most any one job had.
    failed_starts: int = 0
    max_failed_starts: int = 0
    # Held jobs that waited for room on their planned cluster, their re-plans used up, and of
    # them those that left it at their latest start.
    waited_for_room: int = 0
    left_at_latest_start: int = 0

    @property
    def placed(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.cluster >= 0)


def signature(job: JobRequest) -> Hashable:
    return (
        job.compute_type,
        tuple(sorted(job.pod_resources.items())),
        job.parallelism,
        job.origin,
        job.latency_budget_ms,
        None if job.data is None else (job.data.inputs, job.data.transfer_budget_s),
    )


def replay(
    jobs: Sequence[SimJob],
    state: FleetState,
    placer: Placer,
    curves: PowerCurves,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Replay:
    """Replay the trace on ``state`` (mutated: use a fresh one per policy)."""
    if tuple(curves.names) != tuple(state.names):
        raise ValueError("power curves and fleet state list different clusters")
    n = len(jobs)
    cluster = np.full(n, -1, dtype=np.int64)
    start = np.full(n, np.nan)
    end = np.full(n, np.nan)
    rtt = np.full(n, np.nan)
    running: list[tuple[float, int, dict[str, int]]] = []
    held: list[tuple[float, int, int]] = []  # (planned start, job, cluster); stale ones skipped
    plans: dict[int, tuple[float, int]] = {}  # held job → its current (start, cluster)
    was_held: set[int] = set()
    no_room: dict[int, int] = {}  # held job → its starts that found no room
    planner = placer if isinstance(placer, TimedPlacer) else None
    replans = planner is not None and bool(getattr(planner, "rolling", False))
    batch = planner is not None and bool(getattr(planner, "batch", False))
    # Batch placers may also re-plan when a completion frees room (at most once per gap).
    free_gap = float(getattr(planner, "replan_on_free_s", 0.0) or 0.0) if batch else 0.0
    last_free_replan = -math.inf
    # Batch placers may plan held starts that fail the node check jointly again (once each).
    retry_failed = batch and bool(getattr(planner, "replan_failed_starts", False))
    max_replans: int | None = getattr(planner, "max_replans", None)
    wait_past_latest = bool(getattr(planner, "wait_past_latest_start", False))
    waiting: dict[int, int] = {}  # job → the cluster it waits on (its re-plans used up)
    latest: list[tuple[float, int]] = []  # (latest start, job) of waiting jobs, a heap
    waited: set[int] = set()
    left_late = 0
    queue: list[int] = []
    hour = -1
    overcommits = 0
    decisions = 0
    next_arrival = 0
    done = 0
    step = max(n // 20, 1)

    def start_job(i: int, choice: int, now: float) -> None:
        nonlocal overcommits, done
        job = jobs[i].request
        placed = state.reserve(choice, job)
        if bool((state.node_free < -1e-6).any()):
            overcommits += 1
        cluster[i] = choice
        # The pods start once the job's data has arrived; the capacity is held meanwhile.
        moving = 0.0 if job.data is None else float(transfer_of(job.data, state).seconds[choice])
        start[i] = now + moving
        end[i] = start[i] + jobs[i].duration_s
        rtt[i] = state.latency_from(job.origin)[choice]
        heapq.heappush(running, (end[i], i, placed))
        if planner is not None:
            planner.started(i, jobs[i], state, choice, float(end[i]))
        done += 1
        if progress is not None and done % step == 0:
            progress(done, n)

    def hold(i: int, at: float, choice: int) -> None:
        heapq.heappush(held, (at, i, choice))
        plans[i] = (at, choice)
        was_held.add(i)

    def replan_held(now: float) -> None:
        assert planner is not None
        for i in sorted(plans, key=lambda k: (plans[k][0], k)):
            at, _ = plans[i]
            if at <= now + 1e-6:
                continue  # due now: the held-start step below handles it
            moved = planner.replan(i, jobs[i], state, now)  # type: ignore[attr-defined]
            if moved is None:
                continue
            choice, new_at = moved
            if new_at > now + 1e-6:
                hold(i, new_at, choice)
            else:
                del plans[i]
                start_job(i, choice, now)

    def replan_batch(now: float) -> None:
        """All held jobs planned together; one due now joins the held-start step below."""
        assert planner is not None
        moved = planner.replan_batch(dict(plans), jobs, state, now)  # type: ignore[attr-defined]
        for i, (choice, new_at) in sorted(moved.items()):
            at = max(new_at, now)
            if plans.get(i) != (at, choice):
                hold(i, at, choice)

    def waits(i: int, now: float) -> bool:
        """Whether a held job whose start found no room waits on its cluster (re-plans used
        up, its latest start still ahead) instead of being planned again."""
        latest_s = jobs[i].latest_start_s
        if max_replans is None or no_room.get(i, 0) <= max_replans or latest_s is None:
            return False
        return wait_past_latest or now < latest_s - 1e-6

    def wait_for_room(i: int, choice: int) -> None:
        waiting[i] = choice
        waited.add(i)
        latest_s = jobs[i].latest_start_s
        assert latest_s is not None
        heapq.heappush(latest, (latest_s, i))

    def serve_waiting(now: float, freed: bool) -> None:
        """Waiting jobs start on their cluster when it has room; at their latest start they
        are planned once more (anywhere), unless they wait past it."""
        nonlocal left_late
        while latest and not wait_past_latest and latest[0][0] <= now + 1e-6:
            _, i = heapq.heappop(latest)
            if waiting.pop(i, None) is None:
                continue  # started on its cluster since
            left_late += 1
            if not attempt(i, now):
                bisect.insort(queue, i)
        if not freed:
            return
        for i, choice in sorted(waiting.items()):
            job = jobs[i].request
            if state.pods_fitting_per_cluster(job)[choice] >= job.parallelism:
                del waiting[i]
                start_job(i, choice, now)

    def attempt(i: int, now: float) -> bool:
        nonlocal decisions
        job = jobs[i].request
        decisions += 1
        if planner is not None:
            planned = planner.plan(i, jobs[i], state, now)
            if planned is None:
                return False
            choice, at = planned
            if at > now + 1e-6:
                hold(i, at, choice)
                return True
        else:
            picked = placer.choose(job, state)
            if picked is None:
                return False
            choice = picked
        start_job(i, choice, now)
        return True

    last_replan = -1.0  # the whole hour of the last re-plan
    now = 0.0
    # Jobs waiting past their latest start wake only on completions (``running``).
    while next_arrival < n or running or held or (latest and not wait_past_latest):
        t_arrival = jobs[next_arrival].arrival_s if next_arrival < n else math.inf
        t_done = running[0][0] if running else math.inf
        t_held = held[0][0] if held else math.inf
        while latest and latest[0][1] not in waiting:
            heapq.heappop(latest)  # started on its cluster since
        t_latest = latest[0][0] if latest and not wait_past_latest else math.inf
        # the next whole hour, a re-plan instant, while any job is held
        t_tick = math.inf
        if (replans or batch) and plans:
            t_tick = math.ceil(now / 3600) * 3600
            if t_tick <= last_replan:
                t_tick += 3600
        now = min(t_arrival, t_done, t_held, t_tick, t_latest)
        h = int(now // 3600)
        if h != hour:
            state.update_power(*curves.at(h))
            hour = h
        freed = False
        while running and running[0][0] <= now:
            _, i, placed = heapq.heappop(running)
            state.release(placed, jobs[i].request)
            if planner is not None:
                planner.finished(i, now)
            freed = True
        if freed and queue:
            failed: set[Hashable] = set()
            still: list[int] = []
            for i in queue:
                sig = signature(jobs[i].request)
                if sig in failed or not attempt(i, now):
                    failed.add(sig)
                    still.append(i)
            queue = still
        if waiting:
            serve_waiting(now, freed)
        if (replans or batch) and plans and now % 3600 == 0 and now > last_replan:
            last_replan = now
            last_free_replan = now
            if batch:
                replan_batch(now)
            else:
                replan_held(now)
        elif free_gap and freed and plans and now - last_free_replan >= free_gap:
            last_free_replan = now
            replan_batch(now)
        retried: set[int] = set()  # held starts that failed once at this instant
        while held and held[0][0] <= now:
            retry: list[int] = []
            while held and held[0][0] <= now:
                at, i, choice = heapq.heappop(held)
                if plans.get(i) != (at, choice):
                    continue  # re-planned since (or already started)
                assert planner is not None
                fits = state.pods_fitting_per_cluster(jobs[i].request)[choice]
                if fits < jobs[i].request.parallelism:
                    no_room[i] = no_room.get(i, 0) + 1
                if fits < jobs[i].request.parallelism and retry_failed and i not in retried:
                    retry.append(i)  # keeps its plan (and promise) for a second joint plan
                    continue
                del plans[i]
                planner.release(i)
                if fits >= jobs[i].request.parallelism:
                    start_job(i, choice, now)
                elif waits(i, now):
                    wait_for_room(i, choice)
                elif not attempt(i, now):
                    bisect.insort(queue, i)  # arrival order
            if retry:
                # A second joint plan, before the per-job fallback: every held job, the failed
                # ones offered "start now" only where their pods fit node by node.
                retried.update(retry)
                replan_batch(now)
                for i in retry:
                    at, choice = plans[i]
                    if at <= now + 1e-6:
                        heapq.heappush(held, (at, i, choice))  # due: the loop above again
        while next_arrival < n and jobs[next_arrival].arrival_s <= now:
            i = next_arrival
            next_arrival += 1
            if queue and signature(jobs[i].request) == signature(jobs[queue[-1]].request):
                queue.append(i)  # shaped like the last waiting job: it would wait too
            elif not attempt(i, now):
                queue.append(i)
    return Replay(
        placer.name,
        cluster,
        start,
        end,
        rtt,
        overcommits,
        decisions,
        deferred=len(was_held),
        failed_starts=sum(no_room.values()),
        max_failed_starts=max(no_room.values(), default=0),
        waited_for_room=len(waited),
        left_at_latest_start=left_late,
    )
