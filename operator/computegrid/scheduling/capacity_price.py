"""Prices for room in space and time: gCO2e per unit·hour of a pool's cpu, memory or GPUs.

The online counterpart of the time-expanded LP bound (``sim/bound.py``). The LP's dual price
on a capacity row (cluster, compute-type pool, resource, hour) says how much carbon the whole
schedule would save with one more unit of that room at that hour: green clusters at their
busy hours are dear, idle or dirty ones free. A placement that takes the room should pay for
it. With exact prices the LP optimum is exactly "each job at its cheapest (carbon + price)
option" (complementary slackness); an online policy with prices learned from past traces is
the standard primal-dual heuristic for such packing problems (e.g. Devanur & Hayes, "The
adwords problem: online keyword matching with budgeted bidders under random permutations",
EC 2009; Agrawal, Wang & Ye, "A dynamic near-optimal algorithm for online linear
programming", Operations Research 2014). So a job that could go anywhere stops taking the
green room a latency-bound job will need, and a deferred job's promise is priced like a run.

The price enters the policy's own objective as carbon: a run's *effective* intensity is the
grid's plus ``Σ_r demand_r · λ_r(cluster, hour) / facility kW`` (g/kWh), so the weights
(carbon 5 : price 1 for the low class) stay what they are. ``TimeScheduler(prices=…)``
applies it; nothing here changes a decision by itself.

Hours are counted from ``start_s`` in the caller's seconds; with ``period_h`` (24: a daily
profile) the table repeats, else an hour outside it costs nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from computegrid.api.common import GPU, LatencySensitivity
from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import TYPE_CODES, FleetState, FloatArray

# The resources the LP's capacity rows cover (sim/bound.py), in the units of pod_resources.
RESOURCES: tuple[str, ...] = ("cpu", "memory", GPU)
ALL_CLASSES = frozenset(LatencySensitivity)


def demand(job: JobRequest) -> FloatArray:
    """[resources]: what all the job's pods ask for, in ``RESOURCES`` order."""
    return np.array([job.pod_resources.get(r, 0.0) * job.parallelism for r in RESOURCES])


@dataclass(frozen=True)
class CapacityPrices:
    """``g_per_unit_h[hour, cluster, type, resource]`` from ``start_s``; ≥ 0 and finite."""

    start_s: float
    g_per_unit_h: FloatArray
    period_h: int | None = None  # repeat every period_h hours; None: 0 outside the table
    clusters: tuple[str, ...] = ()  # the clusters' names in order (checked against a state)
    applies_to: frozenset[LatencySensitivity] = field(default=ALL_CLASSES)

    def __post_init__(self) -> None:
        table = np.asarray(self.g_per_unit_h, dtype=float)
        if table.ndim != 4 or table.shape[2] != len(TYPE_CODES) or table.shape[3] != len(RESOURCES):
            raise ValueError(
                f"g_per_unit_h: shape {table.shape} is not (hours, clusters, "
                f"{len(TYPE_CODES)} types, {len(RESOURCES)} resources)"
            )
        if table.shape[0] == 0 or not np.isfinite(table).all() or (table < 0).any():
            raise ValueError("g_per_unit_h: every price must be finite and ≥ 0 (at least 1 hour)")
        if self.period_h is not None and self.period_h != table.shape[0]:
            raise ValueError(f"period_h {self.period_h} ≠ the table's {table.shape[0]} hours")
        if self.clusters and len(self.clusters) != table.shape[1]:
            raise ValueError(f"clusters: {len(self.clusters)} names for {table.shape[1]} columns")
        object.__setattr__(self, "g_per_unit_h", table)

    @property
    def hours(self) -> int:
        return int(self.g_per_unit_h.shape[0])

    def scaled(self, factor: float) -> CapacityPrices:
        if not factor >= 0:
            raise ValueError(f"scale must be ≥ 0, got {factor}")
        return CapacityPrices(self.start_s, self.g_per_unit_h * factor, self.period_h,
                              self.clusters, self.applies_to)  # fmt: skip

    def _check(self, state: FleetState) -> None:
        if self.g_per_unit_h.shape[1] != state.size or (
            self.clusters and tuple(self.clusters) != tuple(state.names)
        ):
            raise ValueError("capacity prices and fleet state list different clusters")

    def job_hourly(self, job: JobRequest, first_h: int, hours: int) -> FloatArray:
        """[hours, clusters]: g per hour the job's room costs, hour ``first_h`` onwards."""
        idx = first_h + np.arange(hours)
        if self.period_h is not None:
            idx, inside = idx % self.period_h, np.ones(hours, dtype=bool)
        else:
            inside = (idx >= 0) & (idx < self.hours)
            idx = np.clip(idx, 0, self.hours - 1)
        table = self.g_per_unit_h[idx, :, TYPE_CODES[job.compute_type], :]  # [h, clusters, res]
        return np.asarray(np.where(inside[:, None], table @ demand(job), 0.0), dtype=float)

    def mean_rate(
        self, job: JobRequest, state: FleetState, starts: FloatArray, duration_s: float
    ) -> FloatArray:
        """[starts, clusters]: g per hour the room costs, averaged over each run."""
        self._check(state)
        starts = np.asarray(starts, dtype=float)
        duration_s = max(float(duration_s), 1.0)
        rel = (starts - self.start_s) / HOUR_S  # hours from the table's start
        first = int(np.floor(rel.min()))
        last = int(np.ceil(rel.max() + duration_s / HOUR_S))
        series = self.job_hourly(job, first, max(last - first, 1))
        cum = np.concatenate([np.zeros((1, state.size)), np.cumsum(series, axis=0)])

        def integral(x: FloatArray) -> FloatArray:  # g from hour ``first`` to x (hours)
            k = np.clip(np.floor(x - first).astype(np.int64), 0, len(series) - 1)
            return np.asarray(cum[k] + (x - first - k)[:, None] * series[k], dtype=float)

        return (integral(rel + duration_s / HOUR_S) - integral(rel)) / (duration_s / HOUR_S)

    def surcharge_g_per_kwh(
        self, job: JobRequest, state: FleetState, starts: FloatArray, duration_s: float
    ) -> FloatArray:
        """[starts, clusters]: the room's price as extra grid intensity (0 for other classes)."""
        out = np.zeros((len(starts), state.size))
        kw = it_power_kw(job)
        if job.sensitivity not in self.applies_to or kw <= 0:
            return out
        facility_kw = kw * np.array([PUE[c.region] for c in state.clusters])
        return self.mean_rate(job, state, starts, duration_s) / facility_kw[None, :]


def learn_prices(
    duals: Sequence[FloatArray],
    *,
    bucket_hours: float = 1.0,
    period_h: int | None = None,
    from_h: int = 0,
    to_h: int | None = None,
    start_s: float = 0.0,
    clusters: Sequence[str] = (),
) -> CapacityPrices:
    """One table from the LP duals of several training traces (the mean over them).

    ``duals``: each ``[buckets, clusters, types, resources]``, the LP's price of one unit of
    room held over one whole bucket, in kg (``Bound.capacity_duals``). Each bucket becomes
    ``bucket_hours`` hours at price/bucket_hours (g per unit·hour). With ``period_h`` the
    hours in [from_h, to_h) are folded onto hour mod period_h (a daily profile: the trace's
    first hours, an empty fleet filling up, and its tail after the last arrival can be left
    out); without, the table is hour by hour over the shortest trace.
    """
    if not duals:
        raise ValueError("duals: at least one training trace is needed")
    per_bucket = round(bucket_hours)
    if per_bucket < 1 or abs(per_bucket - bucket_hours) > 1e-9:
        raise ValueError(f"bucket_hours must be a whole number of hours, got {bucket_hours}")
    hourly = [
        np.repeat(np.maximum(np.asarray(d, dtype=float), 0.0), per_bucket, axis=0)
        * (1000.0 / per_bucket)
        for d in duals
    ]
    hours = min(h.shape[0] for h in hourly)
    stop = hours if to_h is None else min(to_h, hours)
    if period_h is None:
        table = np.mean([h[:stop] for h in hourly], axis=0)
        return CapacityPrices(start_s, table, None, tuple(clusters))
    if stop - from_h < period_h:
        raise ValueError(f"[{from_h}, {stop}) h is shorter than one period of {period_h} h")
    span = np.concatenate([h[from_h:stop] for h in hourly])  # seeds one after the other
    phase = np.concatenate([np.arange(from_h, stop) % period_h for _ in hourly])
    table = np.stack([span[phase == p].mean(axis=0) for p in range(period_h)])
    return CapacityPrices(start_s, table, period_h, tuple(clusters))


@dataclass(frozen=True)
class CongestionPrice:
    """A price for room that rises with how full the pool would be: no table to learn.

    Averages learned from the LP's duals made most jobs indifferent to the green room and
    left it half used (docs/sim.md, session 5). The online primal-dual rule for packing
    instead prices a resource by its own fill: free while empty, dear when nearly full,
    exponentially in between (Buchbinder & Naor, "The design of competitive online
    algorithms via a primal-dual approach", 2009, ch. 13 on online packing). Here the fill is
    the share of the job's pool (cluster, compute type) that would be in use over the run
    once the job and every promise are counted, the largest over the resources the job asks
    for; the surcharge is ``full × (e^{k·u} − 1) / (e^k − 1)`` g/kWh: with full = 200 g/kWh
    and k = 4, u = 0.5 → 24 g/kWh, 0.9 → 133, 1 → 200. It enters the score as extra carbon
    intensity, like ``CapacityPrices``. Pure.
    """

    full_g_per_kwh: float = 200.0
    steepness: float = 4.0
    # Charge only jobs with a window (they could wait or go elsewhere later); work that must
    # start now takes the room as the plain policy would.
    windowed_only: bool = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.full_g_per_kwh) and self.full_g_per_kwh >= 0):
            raise ValueError(f"full_g_per_kwh must be ≥ 0 and finite, got {self.full_g_per_kwh}")
        if not (np.isfinite(self.steepness) and self.steepness > 0):
            raise ValueError(f"steepness must be > 0 and finite, got {self.steepness}")

    def surcharge_g_per_kwh(self, used_share: FloatArray) -> FloatArray:
        u = np.clip(np.asarray(used_share, dtype=float), 0.0, 1.0)
        return np.asarray(
            self.full_g_per_kwh * np.expm1(self.steepness * u) / np.expm1(self.steepness),
            dtype=float,
        )
