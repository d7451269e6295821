"""Metrics of one replay, and their mean and 95 % confidence interval over seeds.

Carbon and cost are accounted over each job's actual run: facility power (IT power of
``scheduling.energy.it_power_kw`` × the cluster's PUE) times the integral of the hourly curve
from start to end, partial hours pro rata. Location-based carbon uses the grid curve,
market-based the curve net of the contracted green share (``fleet_data.power``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from computegrid.api.common import GPU, LatencySensitivity, Region
from computegrid.fleet_data.power import PowerCurves
from computegrid.scheduling import FleetState, JobRequest
from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.transfer import transfer_of
from computegrid.sim.engine import Replay
from computegrid.sim.trace import SimJob, origin_region

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class JobArrays:
    """Per-job constants of a trace, computed once and shared by every policy's metrics."""

    arrival_s: FloatArray
    duration_s: FloatArray
    it_kw: FloatArray
    cpu: FloatArray  # cores × pods
    gpu: FloatArray  # GPUs × pods
    budget_ms: FloatArray  # inf for the low class
    sensitivity: tuple[LatencySensitivity, ...]
    east_origin: npt.NDArray[np.bool_]
    deadline_s: FloatArray  # inf for a job without a window
    requests: tuple[JobRequest, ...] = ()  # for the data metrics (issue 10)

    @classmethod
    def of(cls, jobs: Sequence[SimJob]) -> JobArrays:
        regions: dict[str, str] = {}
        east = []
        for j in jobs:
            o = j.request.origin
            if o not in regions:
                regions[o] = origin_region(o)
            east.append(regions[o] == "east")
        return cls(
            arrival_s=np.array([j.arrival_s for j in jobs]),
            duration_s=np.array([j.duration_s for j in jobs]),
            it_kw=np.array([it_power_kw(j.request) for j in jobs]),
            cpu=np.array(
                [j.request.pod_resources.get("cpu", 0.0) * j.request.parallelism for j in jobs]
            ),
            gpu=np.array(
                [j.request.pod_resources.get(GPU, 0.0) * j.request.parallelism for j in jobs]
            ),
            budget_ms=np.array(
                [
                    math.inf if j.request.latency_budget_ms is None else j.request.latency_budget_ms
                    for j in jobs
                ]
            ),
            sensitivity=tuple(j.request.sensitivity for j in jobs),
            east_origin=np.array(east, dtype=bool),
            deadline_s=np.array(
                [math.inf if j.deadline_s is None else j.deadline_s for j in jobs], dtype=float
            ),
            requests=tuple(j.request for j in jobs),
        )


def hourly_integral(curve: FloatArray, t0_s: FloatArray, t1_s: FloatArray) -> FloatArray:
    """∫ curve over [t0, t1] in value·hours, per element; ``curve`` is [hours] or paired.

    ``curve`` is 1-D (one cluster) or 2-D [hours, n] already gathered per element. A job
    from 0.5 h to 2.25 h on hourly values (10, 20, 30): 0.5·10 + 20 + 0.25·30 = 32.5.
    """
    hours = curve.shape[0]
    cum = np.concatenate([np.zeros((1, *curve.shape[1:])), np.cumsum(curve, axis=0)])

    def at(t_s: FloatArray) -> FloatArray:
        x = np.clip(np.asarray(t_s) / 3600.0, 0.0, hours - 1e-9)
        k = np.floor(x).astype(np.int64)
        if curve.ndim == 1:
            return np.asarray(cum[k] + (x - k) * curve[k], dtype=float)
        cols = np.arange(curve.shape[1])
        return np.asarray(cum[k, cols] + (x - k) * curve[k, cols], dtype=float)

    return at(t1_s) - at(t0_s)


def curve_hours(jobs: JobArrays, replays: Sequence[Replay] = ()) -> int:
    """Hours of curve needed to cover every job's run (waits included) with a day to spare."""
    last = float((jobs.arrival_s + jobs.duration_s).max(initial=0.0))
    windowed = np.isfinite(jobs.deadline_s)
    if windowed.any():  # the time-expanded bound may run a job up to its deadline
        last = max(last, float(jobs.deadline_s[windowed].max()))
    for r in replays:
        if r.placed.any():
            last = max(last, float(np.nanmax(r.end_s)))
    return int(last // 3600) + 25


def energy_cost(
    jobs: JobArrays, cluster: npt.NDArray[np.int64], start_s: FloatArray, pue: FloatArray,
    window: Mapping[str, FloatArray],
) -> dict[str, FloatArray]:  # fmt: skip
    """Per-job kWh, gCO2 (location and market) and CNY for the given placements and starts."""
    ok = cluster >= 0
    c = np.where(ok, cluster, 0)
    start = np.where(ok, start_s, 0.0)
    end = start + jobs.duration_s
    kw = jobs.it_kw * pue[c]
    out = {"kwh": np.where(ok, kw * jobs.duration_s / 3600.0, 0.0)}
    for key, curve in (("carbon_g", "carbon"), ("market_g", "carbon_market"), ("cny", "price")):
        gathered = window[curve][:, c]
        out[key] = np.where(ok, kw * hourly_integral(gathered, start, end), 0.0)
    return out


def policy_metrics(
    replay: Replay, jobs: JobArrays, state: FleetState, curves: PowerCurves
) -> dict[str, Any]:
    """One replay's metrics (one seed)."""
    pue = np.array([PUE[c.region] for c in state.clusters])
    window = curves.window(curve_hours(jobs, [replay]))
    cost = energy_cost(jobs, replay.cluster, replay.start_s, pue, window)
    placed = replay.placed
    wait = np.where(placed, replay.start_s - jobs.arrival_s, np.nan)
    violations = placed & (replay.latency_ms > jobs.budget_ms + 1e-9)
    windowed = np.isfinite(jobs.deadline_s)
    # A windowed job misses its deadline if it ends after it, or never ran at all.
    ends = np.where(placed, replay.end_s, np.inf)
    misses = windowed & (ends > jobs.deadline_s + 1e-6)
    deferral = np.where(placed & windowed, replay.start_s - jobs.arrival_s, np.nan)
    west = np.array([c.region is Region.WEST for c in state.clusters])
    to_west = placed & west[np.where(placed, replay.cluster, 0)]
    east_kwh = cost["kwh"][jobs.east_origin].sum()
    span_h = max(float(jobs.arrival_s.max(initial=0.0)) / 3600.0, 1e-9)
    alloc, _ = state.cluster_totals()
    busy_cpu = np.bincount(replay.cluster[placed], weights=(jobs.cpu * jobs.duration_s)[placed],
                           minlength=state.size) / 3600.0  # fmt: skip
    busy_gpu = np.bincount(replay.cluster[placed], weights=(jobs.gpu * jobs.duration_s)[placed],
                           minlength=state.size) / 3600.0  # fmt: skip
    cap_cpu = alloc[:, state.resource_index["cpu"]]
    gi = state.resource_index.get(GPU)
    cap_gpu = alloc[:, gi] if gi is not None else np.zeros(state.size)
    utilisation = {
        name: {
            "cpu": round(float(busy_cpu[i] / (cap_cpu[i] * span_h)), 4) if cap_cpu[i] else None,
            "gpu": round(float(busy_gpu[i] / (cap_gpu[i] * span_h)), 4) if cap_gpu[i] else None,
        }
        for i, name in enumerate(state.names)
    }
    per_class = {}
    for s in LatencySensitivity:
        mask = np.array([x is s for x in jobs.sensitivity], dtype=bool)
        per_class[s.value] = {
            "jobs": int(mask.sum()),
            "carbon_t": float(cost["carbon_g"][mask].sum() / 1e6),
            "latency_violations": int((violations & mask).sum()),
            "mean_wait_s": _mean(wait[mask]),
        }
    return {
        **data_metrics(replay, jobs, state),
        "carbon_t": float(cost["carbon_g"].sum() / 1e6),
        "carbon_market_t": float(cost["market_g"].sum() / 1e6),
        "cost_cny": float(cost["cny"].sum()),
        "energy_mwh": float(cost["kwh"].sum() / 1e3),
        "latency_violations": int(violations.sum()),
        "deadline_misses": int(misses.sum()),
        "windowed_jobs": int(windowed.sum()),
        "deferred_jobs": int(replay.deferred),
        "failed_starts": int(replay.failed_starts),
        "max_failed_starts": int(replay.max_failed_starts),
        "waited_for_room": int(replay.waited_for_room),
        "left_at_latest_start": int(replay.left_at_latest_start),
        "mean_windowed_wait_h": _mean(deferral) / 3600.0,
        "mean_rtt_ms": _mean(np.where(placed, replay.latency_ms, np.nan)),
        "overcommits": int(replay.overcommits),
        "unplaced": int((~placed).sum()),
        "jobs_waited": int(np.nansum(wait > 0)),
        "mean_wait_s": _mean(wait),
        "p95_wait_s": float(np.nanpercentile(wait, 95)) if placed.any() else 0.0,
        "east_to_west_share": float(cost["kwh"][jobs.east_origin & to_west].sum() / east_kwh)
        if east_kwh > 0
        else 0.0,
        "work_by_cluster_mwh": {
            name: float(cost["kwh"][replay.cluster == i].sum() / 1e3)
            for i, name in enumerate(state.names)
        },
        "utilisation": utilisation,
        "per_class": per_class,
    }


def _mean(values: FloatArray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else 0.0


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the t-interval); one value gives half-width 0.

    (1, 2, 3): mean 2, s = 1, t(0.975, 2) = 4.303, half-width 4.303/√3 = 2.484.
    """
    arr = np.asarray(values, dtype=float)
    if len(arr) < 2:
        return (float(arr.mean()) if len(arr) else 0.0), 0.0
    sem = float(arr.std(ddof=1)) / math.sqrt(len(arr))
    return float(arr.mean()), float(stats.t.ppf(0.5 + level / 2, len(arr) - 1) * sem)


def captured_savings(nearest: float, policy: float, bound: float) -> float:
    """(nearest − policy)/(nearest − bound): 100 t, 80 t, 70 t → 20/30 = 0.667."""
    gap = nearest - bound
    return (nearest - policy) / gap if gap > 0 else 1.0


def data_metrics(replay: Replay, jobs: JobArrays, state: FleetState) -> dict[str, float]:
    """Moving input data (issue 10): tCO2e, CNY, TiB moved and mean minutes of transfer, and
    the run's carbon plus the transfer's. Empty for a trace without data, so its output is
    unchanged."""
    with_data = [i for i, r in enumerate(jobs.requests) if r.data is not None]
    if not with_data:
        return {}
    carbon_g = cny = gib = seconds = 0.0
    moved_jobs = 0
    for i in with_data:
        c = int(replay.cluster[i])
        data = jobs.requests[i].data
        if c < 0 or data is None:
            continue
        moved = transfer_of(data, state)
        carbon_g += float(moved.carbon_g[c])
        cny += float(moved.cny[c])
        gib += float(moved.moved_gib[c])
        seconds += float(moved.seconds[c])
        moved_jobs += int(moved.moved_gib[c] > 0)
    return {
        "data_jobs": float(len(with_data)),
        "data_jobs_moved": float(moved_jobs),
        "transfer_carbon_t": carbon_g / 1e6,
        "transfer_cny": cny,
        "transfer_tib": gib / 1024,
        "mean_transfer_min": seconds / 60 / len(with_data),
    }
