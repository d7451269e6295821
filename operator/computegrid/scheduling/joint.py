"""The joint plan's inputs from the fleet as it is: each waiting job's options, the room per hour.

``plan_batch`` (batch_plan.py) solves the time-expanded assignment of many deferrable jobs
at once; this module builds what it solves, one implementation for both callers: the
operator's hourly joint re-plan of its Deferred jobs (handlers/joint.py) and the simulator's
``computegrid-timed-batch`` policies (sim/batch.py).

- ``job_options``: every (cluster, start) a job may take from now: whole hours up to its
  latest start less a margin, on the clusters its load-independent filters allow (compute
  type, latency budget, a pod fits an empty node), each priced at the run's location-based
  carbon (facility power × the forecast's mean intensity over the run) plus the electricity
  price at the policy's own exchange rate (``grams_per_cny``), plus a tie-break toward
  earlier starts. "Start now" is offered only where the pods fit node by node now.
- ``slot_room``: free capacity per (hour slot, cluster, compute-type pool, resource) from the
  slot of now: free now, less the CriticalHeadroom reserve, plus what running jobs that
  declared their run give back from the slot after their end, less what promises *outside*
  the batch hold over their slots.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling.batch_plan import BatchJob, occupied_slots
from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.framework import Scheduler
from computegrid.scheduling.plugins import carbon as carbon_plugin
from computegrid.scheduling.plugins import headroom
from computegrid.scheduling.plugins import price as price_plugin
from computegrid.scheduling.policy import Policy
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import TYPE_CODES, BoolArray, FleetState, FloatArray
from computegrid.scheduling.timeshift import (
    CAPACITY_FILTERS,
    FleetForecast,
    Reservation,
    Window,
    fits_empty_node,
    pool_capacity,
    window_for,
)

# The last hour before a job's latest start is never planned: a start that fails there (the
# pods do not fit node by node, or the room was taken) still leaves an hour to find room.
DEADLINE_MARGIN_S = HOUR_S
# Per hour of delay, in gCO2e: far below any real difference between options (a 1 kW job
# for an hour is hundreds of grams), so it only breaks exact ties toward the earlier start.
DELAY_TIE_G_PER_H = 1e-3
# Slots beyond the planning horizon: the longest run the study's traces hold (24 h), with
# room; past the array the last slot's room holds (plan_batch).
RUN_SLOTS = 26


def grams_per_cny(policy: Policy) -> float:
    """The low class's exchange rate of price into carbon, g/kWh per CNY/kWh: its score adds
    ``w_c × 100 × (1 − g/worst)`` and ``w_p × 100 × (1 − p/ceiling)``, so one CNY/kWh weighs as
    much as ``(w_p / ceiling) / (w_c / worst)`` g/kWh: (1/1)/(5/1000) = 200 by default, 0 when
    the class ignores price (PowerPrice 0)."""
    weights = policy.weights[LatencySensitivity.LOW]
    w_carbon = float(weights.get(carbon_plugin.NAME, 0.0))
    w_price = float(weights.get(price_plugin.NAME, 0.0))
    if w_carbon <= 0:
        raise ValueError(f"weights.low.{carbon_plugin.NAME} must be > 0 for the joint plan")
    args = policy.plugin_args
    worst = float(args.get(carbon_plugin.NAME, {}).get("worst", carbon_plugin.WORST_G_PER_KWH))
    ceiling = args.get(price_plugin.NAME, {}).get("ceiling", price_plugin.CEILING_CNY_PER_KWH)
    ceiling = float(ceiling)
    return (w_price / ceiling) / (w_carbon / worst)


def margin_window(
    job: JobRequest,
    now_s: float,
    deadline_s: float | None,
    duration_s: float,
    margin_s: float = DEADLINE_MARGIN_S,
) -> Window:
    """The window a joint-plan policy plans a job in on arrival: its latest start less the
    margin; once past that point it starts now wherever it fits (or waits for room, as a job
    without a window would)."""
    if deadline_s is None:
        return window_for(job.sensitivity, now_s)
    cutoff = deadline_s - duration_s - margin_s
    return window_for(
        job.sensitivity,
        now_s,
        duration_s=duration_s,
        deadline_s=cutoff + duration_s if now_s < cutoff else None,
    )


def static_mask(scheduler: Scheduler, job: JobRequest, state: FleetState) -> BoolArray:
    """The scheduler's filters that do not depend on the load, and a pod fits an empty node."""
    ev = scheduler.schedule(job, state).evaluation
    ok = fits_empty_node(job, state)
    for plugin, mask in zip(ev.filters, ev.masks, strict=True):
        if plugin.name not in CAPACITY_FILTERS:
            ok = ok & mask
    return np.asarray(ok, dtype=bool)


def job_options(
    key: str,
    job: JobRequest,
    *,
    deadline_s: float,
    duration_s: float,
    not_before_s: float | None = None,
    allowed: BoolArray,
    state: FleetState,
    forecast: FleetForecast,
    now_s: float,
    g_per_cny: float,
    horizon_h: float,
    margin_s: float = DEADLINE_MARGIN_S,
    node_fit_now: bool = True,
) -> BatchJob | None:
    """Every (cluster, start) ``job`` may take from now, priced; None when it has none (its
    deadline has passed, no cluster allows it, or it asks for a resource no node has)."""
    window = window_for(job.sensitivity, now_s, deadline_s=deadline_s, duration_s=duration_s,
                        not_before_s=not_before_s)  # fmt: skip
    if window.late:
        return None
    starts = window.starts(job.sensitivity, horizon_h)
    latest = window.latest_start_s
    assert latest is not None
    starts = starts[(starts <= latest - margin_s) | (starts == starts[0])]
    clusters = np.flatnonzero(allowed)
    vector = state.request_vector(job)
    if not len(clusters) or vector is None:
        return None
    carbon = forecast.mean_over("carbon", starts, duration_s)[:, clusters]
    if g_per_cny:  # the price too, at a fixed exchange rate
        price = forecast.mean_over("price", starts, duration_s)[:, clusters]
        carbon = carbon + g_per_cny * price
    pue = np.array([PUE[state.clusters[c].region] for c in clusters])
    grams = it_power_kw(job) * pue[None, :] * carbon * duration_s / HOUR_S
    delay_h = (starts - now_s) / HOUR_S
    cost = grams + DELAY_TIE_G_PER_H * delay_h[:, None]
    keep = np.ones(cost.shape, dtype=bool)
    if node_fit_now and starts[0] <= now_s + 1e-6:
        # "start now" only where the pods fit node by node now (what a start checks)
        keep[0] = state.pods_fitting_per_cluster(job)[clusters] >= job.parallelism
    if not keep.any():
        return None
    flat = keep.reshape(-1)
    return BatchJob(
        key=key,
        type_code=TYPE_CODES[job.compute_type],
        duration_s=duration_s,
        demand=job.parallelism * vector,
        cluster=np.tile(clusters, len(starts)).astype(np.int64)[flat],
        start_s=np.repeat(starts, len(clusters))[flat],
        cost=cost.reshape(-1)[flat],
    )


def slot_room(
    state: FleetState,
    now_s: float,
    *,
    reserve: float,
    horizon_h: float,
    releases: Iterable[Reservation] = (),
    held: Iterable[Reservation] = (),
    allocatable: bool = False,
) -> FloatArray:
    """[slots, clusters, types, resources] from the slot of ``now_s``: free now less the
    reserve (a share of each pool's allocatable CPU and memory), plus each release from the
    slot after its end, less each promise kept outside the batch over the slots it touches.
    ``allocatable``: from the next slot on, the pools' whole capacity instead of what is
    free now (the most any plan may promise for later, running work or not: what
    ``handlers/timing.broken`` holds it to); the slot of now stays what is free now (work
    running now will not have ended by a start now)."""
    first = int(np.floor(now_s / HOUR_S))
    slots = int(horizon_h) + RUN_SLOTS  # the latest start plus the longest run
    room = np.zeros((slots, state.size, len(TYPE_CODES), len(state.resources)))
    keep = [state.resource_index[r] for r in headroom.RESOURCES if r in state.resource_index]
    for code in range(len(TYPE_CODES)):
        alloc, free = pool_capacity(code, state)
        kept = np.zeros_like(alloc)
        kept[:, keep] = reserve * alloc[:, keep]
        room[:, :, code] = free - kept
        if allocatable:
            room[1:, :, code] = alloc - kept
    for r in releases:
        slot = max(int(np.floor(r.end_s / HOUR_S)) + 1 - first, 0)
        if slot < slots:
            room[slot:, r.cluster, r.compute_type_code] += r.amounts
    for r in held:
        t0 = max(r.start_s, now_s)  # due and not started yet: it holds its room from now
        span = occupied_slots(np.array([t0]), max(r.end_s - t0, 1.0), first)[0]
        a, b = max(int(span[0]), 0), min(int(span[1]), slots)
        room[a:b, r.cluster, r.compute_type_code] -= r.amounts
    return room
