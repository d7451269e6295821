"""Placement in space and time: the (cluster, start hour) that scores best over the job's window.

``TimeScheduler.plan(job, state, window, forecast, book)`` runs the ordinary scheduling
cycle once (filters and scores on the fleet as it is now), then re-scores every candidate
start with the power figures the forecast gives *averaged over the run that start implies*
(carbon, renewable share and price plugins; the others keep their now-values), and picks the
best (start, cluster), ties to the earliest start, then the cluster's name. So the objective
is the policy's own weighted score, moved along the time axis; nothing new to tune.

Candidate starts: now, then each whole hour up to ``deadline − expectedDuration`` (and no
later than ``horizon_h`` ahead). A ``high``-class job, a job with no window, and a job whose
deadline can no longer be met (``late``) have one candidate: now.

Capacity:

- now: the scheduler's own per-node filters (ResourcesFit, CriticalHeadroom) on the live
  state, and the promises already made to deferred jobs (``ReservationBook``) over the run;
- later: the capacity free now in the cluster's pool of the job's compute type (running work
  is assumed to keep running: conservative), less the peak of promised capacity over the
  run, checked in totals (a pod must also fit one empty node; CriticalHeadroom's reserve
  holds for the classes it applies to). The exact per-node fit is checked at the start time.

A job of unknown duration (no window) honours promises over its first hour
(``unknown_run_h``; with 0 it never does), except a ``high``-class job, which never waits
for a promise; a deferred job whose room was taken after all re-plans at its start.
Running jobs that declared their duration may give their capacity back in the book
(``add_release``), so a later start can count on it.

The core keeps no clock: ``Window.now_s`` is what the caller says now is (Unix seconds in
the operator, replay seconds in the simulator).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling.capacity_price import CapacityPrices, CongestionPrice
from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.forecast import HOUR_S, Forecast
from computegrid.scheduling.framework import Scheduler
from computegrid.scheduling.plugins import carbon, headroom, price, renewable
from computegrid.scheduling.plugins.headroom import keeps_headroom
from computegrid.scheduling.policy import DEFAULT_POLICY, Policy
from computegrid.scheduling.result import Decision, Diagnosis, Evaluation
from computegrid.scheduling.run_profile import RunProfile
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import TYPE_CODES, BoolArray, FleetState, FloatArray

POWER_PLUGINS = frozenset({carbon.NAME, renewable.NAME, price.NAME})
POWER_FIGURES = ("carbon", "renewable", "price")  # FleetState's, in update_power's order
CAPACITY_FILTERS = frozenset({"ResourcesFit", headroom.NAME})
HORIZON_H = 48


@dataclass(frozen=True)
class Window:
    """When a job may run: from ``now_s`` (or ``not_before_s``) to end by ``deadline_s``."""

    now_s: float
    duration_s: float | None = None  # None: unknown (a job without a window)
    deadline_s: float | None = None  # None: no window, start now
    not_before_s: float | None = None

    @property
    def earliest_s(self) -> float:
        return max(self.now_s, self.not_before_s or self.now_s)

    @property
    def latest_start_s(self) -> float | None:
        if self.deadline_s is None or self.duration_s is None:
            return None
        return self.deadline_s - self.duration_s

    @property
    def late(self) -> bool:
        """The deadline can no longer be met, even starting at the earliest moment."""
        latest = self.latest_start_s
        return latest is not None and latest < self.earliest_s

    def starts(self, sensitivity: LatencySensitivity, horizon_h: float = HORIZON_H) -> FloatArray:
        """Candidate start times: the earliest, then whole hours up to the latest start."""
        earliest = self.earliest_s
        latest = self.latest_start_s
        if sensitivity is LatencySensitivity.HIGH or latest is None or latest <= earliest:
            return np.array([earliest])
        latest = min(latest, self.now_s + horizon_h * HOUR_S)
        first_hour = np.floor(earliest / HOUR_S) * HOUR_S + HOUR_S
        hours = np.arange(first_hour, latest + 1e-6, HOUR_S)
        return np.concatenate([[earliest], hours])


def window_for(
    sensitivity: LatencySensitivity,
    now_s: float,
    *,
    deadline_s: float | None = None,
    duration_s: float | None = None,
    not_before_s: float | None = None,
) -> Window:
    """The window the planner uses: high-class jobs never wait, whatever they declare."""
    if sensitivity is LatencySensitivity.HIGH:
        return Window(now_s, duration_s)
    return Window(now_s, duration_s, deadline_s, not_before_s)


class FleetForecast:
    """Hourly series of every cluster (axis 1, the state's order) from ``start_s``."""

    def __init__(
        self,
        start_s: float,
        carbon: FloatArray,
        carbon_market: FloatArray,
        renewable: FloatArray,
        price: FloatArray,
    ) -> None:
        self.start_s = float(start_s)
        self.series = {
            "carbon": np.asarray(carbon, dtype=float),
            "carbon_market": np.asarray(carbon_market, dtype=float),
            "renewable": np.asarray(renewable, dtype=float),
            "price": np.asarray(price, dtype=float),
        }
        self.hours = self.series["carbon"].shape[0]
        self._cumulative = {
            k: np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
            for k, v in self.series.items()
        }
        self._mean = {k: v.mean(axis=0) for k, v in self.series.items()}

    @classmethod
    def of(
        cls, forecasts: Sequence[Forecast], now_s: float, hours: int = HORIZON_H * 2
    ) -> FleetForecast:
        """Resample each cluster's forecast onto one hourly grid from the hour of ``now_s``;
        an hour outside a forecast's span takes that forecast's mean."""
        start = np.floor(now_s / HOUR_S) * HOUR_S
        centres = start + HOUR_S * (np.arange(hours) + 0.5)
        columns: dict[str, list[FloatArray]] = {
            k: [] for k in ("carbon", "carbon_market", "renewable", "price")
        }
        for f in forecasts:
            index = np.floor((centres - f.start_s) / HOUR_S).astype(np.int64)
            inside = (index >= 0) & (index < f.hours)
            for name, out in columns.items():
                values = f.series(name)
                out.append(np.where(inside, values[np.clip(index, 0, f.hours - 1)], values.mean()))
        return cls(float(start), *(np.column_stack(columns[k]) for k in columns))

    def mean_over(self, name: str, t0_s: FloatArray, duration_s: float) -> FloatArray:
        """[starts, clusters]: each cluster's mean of ``name`` over ``[t0, t0 + duration)``."""
        cum, values, mean = self._cumulative[name], self.series[name], self._mean[name]

        def integral(t: FloatArray) -> FloatArray:  # value·hours from start_s to t
            x = np.maximum((np.asarray(t) - self.start_s) / HOUR_S, 0.0)
            k = np.minimum(np.floor(x).astype(np.int64), self.hours - 1)
            inside = cum[k] + (x - k)[:, None] * values[k]
            beyond = cum[self.hours] + (x - self.hours)[:, None] * mean
            return np.asarray(np.where((x <= self.hours)[:, None], inside, beyond), dtype=float)

        hours = duration_s / HOUR_S
        return (integral(t0_s + duration_s) - integral(t0_s)) / hours

    def expected_over(self, name: str, t0_s: float, weights: FloatArray) -> FloatArray:
        """[1, clusters]: each cluster's mean of ``name`` over a run from ``t0_s`` whose
        length is unknown, hour ``h`` of it weighted by ``weights[h]`` (the expected share of
        that hour it still runs, ``RunProfile.weights``)."""
        starts = t0_s + HOUR_S * np.arange(len(weights), dtype=np.float64)
        per_hour = self.mean_over(name, starts, HOUR_S)  # [hours of the run, clusters]
        return np.asarray(weights @ per_hour / weights.sum(), dtype=float)[None, :]

    def at(self, t_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(carbon, renewable, price) of the hour containing ``t_s`` (for display)."""
        k = int(np.clip((t_s - self.start_s) // HOUR_S, 0, self.hours - 1))
        return self.series["carbon"][k], self.series["renewable"][k], self.series["price"][k]


@dataclass(frozen=True)
class Reservation:
    """Capacity promised to a deferred job: ``amounts`` over ``state.resources``, in total."""

    key: str
    cluster: int
    compute_type_code: int
    start_s: float
    end_s: float
    amounts: FloatArray


class ReservationBook:
    """Promised capacity per hour slot, per compute-type pool and cluster (a time index).

    A promise counts for every hour slot it touches (whole slots: conservative). A *release*
    is capacity a running job is expected to give back (its expected end, when known): it
    counts from the first whole slot after that time onwards. ``peak`` answers "the most
    promised, net of what will have been released, at any moment of [t0, t0 + d)" for many
    starts at once. Remove a release when its job ends (the capacity is then free, live).
    """

    def __init__(self, clusters: int, resources: int) -> None:
        self.clusters = clusters
        self.resources = resources
        self.items: dict[str, Reservation] = {}
        self.releases: dict[str, Reservation] = {}
        self._slots: dict[tuple[int, int], FloatArray] = {}  # (type, hour) → [clusters, res]
        self._freed: dict[tuple[int, int], FloatArray] = {}  # (type, hour) → released there

    def __len__(self) -> int:
        return len(self.items)

    def _add_to(
        self, table: dict[tuple[int, int], FloatArray], key: tuple[int, int], r: Reservation,
        sign: float,
    ) -> None:  # fmt: skip
        load = table.get(key)
        if load is None:
            load = table[key] = np.zeros((self.clusters, self.resources))
        load[r.cluster] += sign * r.amounts
        if sign < 0 and not np.any(np.abs(load) > 1e-9):
            del table[key]

    def _touch(self, r: Reservation, sign: float) -> None:
        first = int(np.floor(r.start_s / HOUR_S))
        last = int(np.ceil(r.end_s / HOUR_S))
        for slot in range(first, max(last, first + 1)):
            self._add_to(self._slots, (r.compute_type_code, slot), r, sign)

    def add(self, r: Reservation) -> None:
        if r.key in self.items:
            raise ValueError(f"{r.key} already holds a reservation")
        self.items[r.key] = r
        self._touch(r, 1.0)

    def remove(self, key: str) -> Reservation | None:
        r = self.items.pop(key, None)
        if r is not None:
            self._touch(r, -1.0)
        return r

    def add_release(self, r: Reservation) -> None:
        """``r.amounts`` come back to ``r.cluster`` at ``r.end_s`` (from the next slot)."""
        if r.key in self.releases:
            raise ValueError(f"{r.key} already has a release")
        self.releases[r.key] = r
        slot = int(np.floor(r.end_s / HOUR_S)) + 1
        self._add_to(self._freed, (r.compute_type_code, slot), r, 1.0)

    def remove_release(self, key: str) -> None:
        r = self.releases.pop(key, None)
        if r is not None:
            slot = int(np.floor(r.end_s / HOUR_S)) + 1
            self._add_to(self._freed, (r.compute_type_code, slot), r, -1.0)

    def peak(self, type_code: int, starts: FloatArray, duration_s: float) -> FloatArray:
        """[starts, clusters, resources]: the most promised, net of releases, over each run."""
        out = np.zeros((len(starts), self.clusters, self.resources))
        if not self._slots and not self._freed:
            return out
        first = int(np.floor(starts.min() / HOUR_S))
        last = int(np.ceil((starts.max() + duration_s) / HOUR_S))
        loads = np.zeros((last - first + 1, self.clusters, self.resources))
        for (code, slot), load in self._slots.items():
            if code == type_code and first <= slot <= last:
                loads[slot - first] += load
        freed = np.zeros_like(loads)
        for (code, slot), load in self._freed.items():
            if code == type_code and slot <= last:
                freed[max(slot - first, 0)] += load
        net = loads - np.cumsum(freed, axis=0)
        for i, t0 in enumerate(starts):
            a = int(np.floor(t0 / HOUR_S)) - first
            b = max(int(np.ceil((t0 + duration_s) / HOUR_S)) - first, a + 1)
            out[i] = net[a:b].max(axis=0)
        return out


@dataclass
class TimedDecision:
    """The job goes to ``cluster`` starting at ``start_s`` (``deferred`` when after now)."""

    evaluation: Evaluation  # the cycle on the fleet as it is now
    window: Window
    index: int
    start_s: float
    score: float
    starts: FloatArray  # candidate starts
    totals: FloatArray  # [starts, clusters]; −inf where infeasible
    carbon: FloatArray  # [starts, clusters] mean gCO2e/kWh over each run
    price: FloatArray  # [starts, clusters] mean CNY/kWh over each run
    duration_s: float
    nearest_index: int
    utc_offset_h: float = 8.0  # for words: Beijing time
    placed: dict[str, int] = field(default_factory=dict)

    @property
    def job(self) -> JobRequest:
        return self.evaluation.job

    @property
    def state(self) -> FleetState:
        return self.evaluation.state

    @property
    def cluster(self) -> str:
        return self.state.names[self.index]

    @property
    def start_at(self) -> float:
        """The planned start, in the caller's seconds (Unix time in the operator)."""
        return self.start_s

    @property
    def deferred(self) -> bool:
        return self.start_s > self.window.now_s

    @property
    def late(self) -> bool:
        return self.window.late

    def clock(self, t_s: float) -> str:
        """``12:00`` in the display zone; with the date when not today."""
        zone = dt.timezone(dt.timedelta(hours=self.utc_offset_h))
        when = dt.datetime.fromtimestamp(t_s, zone)
        today = dt.datetime.fromtimestamp(self.window.now_s, zone).date()
        return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")

    def footprint_g(self, start: int, cluster: int) -> float:
        """gCO2e of the whole run from candidate ``start`` on ``cluster`` (facility power)."""
        kw = it_power_kw(self.job) * PUE[self.state.clusters[cluster].region]
        return kw * self.duration_s / HOUR_S * float(self.carbon[start, cluster])

    def saved_g(self) -> float:
        """gCO2e saved against starting now on the nearest cluster offering the type."""
        chosen = int(np.flatnonzero(self.starts == self.start_s)[0])
        return self.footprint_g(0, self.nearest_index) - self.footprint_g(chosen, self.index)

    def reasons(self) -> list[str]:
        """The time decision in words, first: why this hour on this cluster."""
        chosen = int(np.flatnonzero(self.starts == self.start_s)[0])
        then, now = self.carbon[chosen, self.index], self.carbon[0, self.index]
        nearest = self.state.names[self.nearest_index]
        saved = self.saved_g()
        words = []
        if self.late:
            words.append("the deadline can no longer be met: starting at once")
        if self.deferred:
            cny_then, cny_now = self.price[chosen, self.index], self.price[0, self.index]
            words.append(
                f"start at {self.clock(self.start_s)} on {self.cluster}: {then:.0f} g/kWh then "
                f"vs {now:.0f} now; saves {saved:.0f} gCO2e against starting now on {nearest}"
            )
            if abs(cny_then - cny_now) >= 0.005:
                words.append(f"power at {cny_then:.2f} CNY/kWh then vs {cny_now:.2f} now")
        else:
            words.append(
                f"start now on {self.cluster}: {now:.0f} g/kWh over the run; saves {saved:.0f} "
                f"gCO2e against {nearest}"
            )
        return words

    def hour_by_hour(self) -> list[dict[str, object]]:
        """One row per candidate start: the best cluster then, its score and the figures."""
        rows: list[dict[str, object]] = []
        for k, t0 in enumerate(self.starts):
            row = self.totals[k]
            if not np.isfinite(row).any():
                rows.append({"start": self.clock(float(t0)), "cluster": None})
                continue
            best = int(np.argmax(row))
            rows.append(
                {
                    "start": self.clock(float(t0)),
                    "start_s": float(t0),
                    "cluster": self.state.names[best],
                    "score": round(float(row[best]), 2),
                    "carbon": round(float(self.carbon[k, best]), 1),
                    "price": round(float(self.price[k, best]), 4),
                    "gco2e": round(self.footprint_g(k, best)),
                    "chosen": bool(t0 == self.start_s),
                }
            )
        return rows


def expected_state(
    job: JobRequest,
    state: FleetState,
    forecast: FleetForecast,
    start_s: float,
    profile: RunProfile | None,
) -> FleetState:
    """The state with each cluster's power figures averaged over the run a job of unknown
    duration is expected to make from ``start_s`` (``RunProfile.weights``), for scoring a
    start now; the state itself when the profile knows too little of the job's shape."""
    figures = expected_figures(job, forecast, start_s, profile)
    if figures is None:
        return state
    return state.with_power(*(figures[k] for k in POWER_FIGURES))


def schedule_over_run(
    scheduler: Scheduler,
    job: JobRequest,
    state: FleetState,
    forecast: FleetForecast,
    start_s: float,
    profile: RunProfile | None,
) -> Decision | Diagnosis:
    """The plain scheduler's answer for a job of unknown duration starting at ``start_s``, on
    the power figures over the run such work makes (said first in a decision's reasons), or
    on the figures of now when the profile knows too little of the job's shape."""
    view = expected_state(job, state, forecast, start_s, profile)
    result = scheduler.schedule(job, view)
    if view is not state and isinstance(result, Decision) and profile is not None:
        result.basis = (str(profile.describe(job)),)
    return result


def expected_figures(
    job: JobRequest, forecast: FleetForecast, start_s: float, profile: RunProfile | None
) -> dict[str, FloatArray] | None:
    """Each of ``POWER_FIGURES`` per cluster, averaged over the run a job of unknown duration
    is expected to make from ``start_s``; None when the profile knows too little of it."""
    weights = profile.weights(job) if profile is not None else None
    if weights is None:
        return None
    return {k: forecast.expected_over(k, start_s, weights)[0] for k in POWER_FIGURES}


def fits_empty_node(job: JobRequest, state: FleetState) -> BoolArray:
    """Clusters with a node of the job's type that could hold one pod when empty."""
    request = state.request_vector(job)
    if request is None:
        return np.zeros(state.size, dtype=bool)
    rows = state.rows_by_type[TYPE_CODES[job.compute_type]]
    fits = (state.node_alloc[rows] >= request).all(axis=1)
    counts = np.bincount(state.node_cluster[rows], weights=fits, minlength=state.size)
    return np.asarray(counts > 0, dtype=bool)


def pool_totals(job: JobRequest, state: FleetState) -> tuple[FloatArray, FloatArray]:
    """(allocatable, free) per cluster in the pool of the job's compute type, live."""
    return pool_capacity(TYPE_CODES[job.compute_type], state)


def pool_capacity(code: int, state: FleetState) -> tuple[FloatArray, FloatArray]:
    """(allocatable, free) per cluster in the pool of one compute type (a code), live."""
    alloc = np.zeros((state.size, len(state.resources)))
    free = np.zeros_like(alloc)
    for cluster in range(state.size):
        rows = state.rows_by_type_cluster.get((code, cluster))
        if rows is not None:  # one contiguous block of nodes per (type, cluster)
            alloc[cluster] = state.node_alloc[rows].sum(axis=0)
            free[cluster] = state.node_free[rows].sum(axis=0)
    return alloc, free


class TimeScheduler:
    """The time-aware entry point beside ``Scheduler.schedule`` (which it runs first)."""

    def __init__(
        self,
        policy: Policy = DEFAULT_POLICY,
        horizon_h: float = HORIZON_H,
        unknown_run_h: float = 1.0,
        prices: CapacityPrices | None = None,
        congestion: CongestionPrice | None = None,
        run_profile: RunProfile | None = None,
    ) -> None:
        self.scheduler = Scheduler(policy)
        # Run times of finished work by shape: a job of unknown duration is scored on the
        # forecast weighted by how long such work runs, not on the figures of now.
        self.run_profile = run_profile
        # Optional price rising with the pool's projected fill (capacity_price.py).
        self.congestion = congestion
        # Optional prices for room (scheduling/capacity_price.py): charged as extra carbon
        # intensity, through the class's carbon weight; None: the plain time-aware policy.
        self.prices = prices
        self.policy = policy
        self.horizon_h = horizon_h
        # How far promises bind a job of unknown duration: its first hour by default. Over the
        # whole horizon (it might run into any promise) it kept low-class work off the green
        # clusters for promises hours away: on the simulator (4,000 jobs, seed 0) 4.4 % more
        # carbon than 1 h. A deferred job whose room was taken re-plans at its start time.
        # 0: promises never hold back a job without a window (it cannot wait; the deferred
        # job can, and re-plans), as for a high-class job.
        self.unknown_run_s = unknown_run_h * HOUR_S
        self.headroom = next((f for f in self.scheduler.filters if f.name == headroom.NAME), None)

    def plan(
        self,
        job: JobRequest,
        state: FleetState,
        window: Window,
        forecast: FleetForecast,
        book: ReservationBook | None = None,
        later_room_judged: bool = False,
    ) -> TimedDecision | Diagnosis:
        """The best (cluster, start) over the job's window. ``later_room_judged``: the caller
        has judged the room at later starts itself (the joint plan's own room per slot): a
        later start is then held only to the filters and a node that could hold one pod."""
        now_result = self.scheduler.schedule(job, state)
        if isinstance(now_result, Diagnosis):
            return now_result
        ev = now_result.evaluation
        starts = window.starts(job.sensitivity, self.horizon_h)
        duration = window.duration_s
        known = duration is not None
        run_s = duration if duration is not None else HOUR_S  # power means over 1 h if unknown
        feasible = self._feasible(job, state, ev, starts, window, book, later_room_judged)
        carbon_mean = forecast.mean_over("carbon", starts, run_s)
        price_mean = forecast.mean_over("price", starts, run_s)
        means = {
            "carbon": carbon_mean,
            "renewable": forecast.mean_over("renewable", starts, run_s),
            "price": price_mean,
        }
        if not known:  # no duration: the figures of now, or over the run such work makes
            over_run = expected_figures(job, forecast, float(starts[0]), self.run_profile)
            figures = over_run or {k: getattr(state, k) for k in POWER_FIGURES}
            means = {k: figures[k][None, :] for k in POWER_FIGURES}
        view = copy.copy(state)
        view.carbon, view.renewable, view.price = (
            means["carbon"],
            means["renewable"],
            means["price"],
        )
        total = np.zeros((len(starts), state.size))
        weight_sum = 0.0
        for plugin, array, weight in zip(ev.scores, ev.score_arrays, ev.weights, strict=True):
            if plugin.name in POWER_PLUGINS:
                array = np.clip(plugin.score(job, view), 0.0, 100.0)
            total = total + weight * array
            weight_sum += weight
        total = total - self._room_charge(job, state, ev, starts, run_s)
        congestion = self.congestion
        if congestion is not None and (
            window.deadline_s is not None or not congestion.windowed_only
        ):
            fill = self._fill(job, state, starts, window, book)
            total = total - self._as_score(ev, congestion.surcharge_g_per_kwh(fill))
        total = np.where(feasible, total / weight_sum, -np.inf)
        if not np.isfinite(total).any():
            return Diagnosis(ev)  # nothing left once promises are honoured
        # Ties within float noise (the same hour's figures a day apart) go to the earliest
        # start, then the lowest name: the first in row-major order.
        flat = int(np.argmax(total >= total.max() - 1e-9))
        k, c = divmod(flat, state.size)
        return TimedDecision(
            evaluation=ev,
            window=window,
            index=c,
            start_s=float(starts[k]),
            score=float(total[k, c]),
            starts=starts,
            totals=total,
            carbon=np.broadcast_to(carbon_mean, total.shape).copy(),
            price=np.broadcast_to(price_mean, total.shape).copy(),
            duration_s=run_s,
            nearest_index=self._nearest(now_result),
        )

    def _room_charge(
        self, job: JobRequest, state: FleetState, ev: Evaluation, starts: FloatArray, run_s: float
    ) -> FloatArray | float:
        """The price of the room each (start, cluster) takes, in weighted score points: what
        the carbon plugin would lose if the grid were dearer by the surcharge (g/kWh)."""
        if self.prices is None:
            return 0.0
        return self._as_score(ev, self.prices.surcharge_g_per_kwh(job, state, starts, run_s))

    @staticmethod
    def _as_score(ev: Evaluation, extra_g_per_kwh: FloatArray) -> FloatArray | float:
        """Weighted score points the carbon plugin would lose at that much more g/kWh."""
        charge: FloatArray | float = 0.0
        for plugin, weight in zip(ev.scores, ev.weights, strict=True):
            if plugin.name == carbon.NAME and weight > 0:
                worst = float(getattr(plugin, "worst", carbon.WORST_G_PER_KWH))
                charge = charge + weight * 100.0 * extra_g_per_kwh / worst
        return charge

    def _left(
        self,
        job: JobRequest,
        state: FleetState,
        starts: FloatArray,
        window: Window,
        book: ReservationBook | None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(need [res], allocatable [clusters, res], left [starts, clusters, res]): the pool's
        room at each start, free now less the peak promised (net of releases) over the run."""
        request = state.request_vector(job)
        need = job.parallelism * request if request is not None else np.zeros(0)
        alloc, free = pool_totals(job, state)
        span = window.duration_s if window.duration_s is not None else self.unknown_run_s
        left = np.broadcast_to(free, (len(starts), *free.shape))  # [starts, clusters, res]
        # A latency-critical job starts now and is not held back by promises: a deferred job
        # whose room it took is planned again (at its start, or at the next re-plan).
        # Likewise a job without a window when ``unknown_run_h`` is 0.
        bound = job.sensitivity is not LatencySensitivity.HIGH and span > 0
        if book is not None and bound:  # promises or releases (peak is 0 on an empty book)
            left = left - book.peak(TYPE_CODES[job.compute_type], starts, span)
        return need, alloc, left

    def _fill(
        self,
        job: JobRequest,
        state: FleetState,
        starts: FloatArray,
        window: Window,
        book: ReservationBook | None,
    ) -> FloatArray:
        """[starts, clusters]: the pool's share in use with the job placed, the most over
        the resources it asks for (1 where the pool has none of one)."""
        need, alloc, left = self._left(job, state, starts, window, book)
        asked = need > 0
        if not asked.any():
            return np.zeros((len(starts), state.size))
        cap = alloc[None, :, asked]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cap > 0, (cap - left[:, :, asked] + need[asked]) / cap, 1.0)
        return np.asarray(share.max(axis=2), dtype=float)

    def _nearest(self, decision: Decision) -> int:
        return decision.evaluation.state.index[decision.nearest().name]

    def _feasible(
        self,
        job: JobRequest,
        state: FleetState,
        ev: Evaluation,
        starts: FloatArray,
        window: Window,
        book: ReservationBook | None,
        later_room_judged: bool = False,
    ) -> BoolArray:
        """[starts, clusters]: the filters now, and capacity with the promises honoured (at
        later starts only unless the caller judged that room itself)."""
        static = np.ones(state.size, dtype=bool)
        for plugin, mask in zip(ev.filters, ev.masks, strict=True):
            if plugin.name not in CAPACITY_FILTERS:
                static &= mask
        out = np.zeros((len(starts), state.size), dtype=bool)
        out[0] = ev.feasible
        if len(starts) > 1:
            out[1:] = static & fits_empty_node(job, state)
        if state.request_vector(job) is None:
            return out
        need, alloc, left = self._left(job, state, starts, window, book)
        asked = need > 0
        fits: BoolArray = np.asarray((left[:, :, asked] >= need[asked] - 1e-9).all(axis=2))
        guard = self.headroom
        if guard is not None and job.sensitivity in getattr(guard, "applies_to", ()):
            reserve = float(getattr(guard, "reserve", 0.0))
            idx = [state.resource_index[r] for r in headroom.RESOURCES if r in state.resource_index]
            idx = [i for i in idx if need[i] > 0]
            if idx:
                keep = keeps_headroom(left[:, :, idx], need[idx], alloc[None, :, idx], reserve)
                fits &= keep.all(axis=2)
        if later_room_judged:
            fits[1:] = True
        return out & fits
