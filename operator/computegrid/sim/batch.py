"""``computegrid-timed-batch``: windowed jobs planned together, re-solved every hour.

On arrival a job is planned as by ``computegrid-timed`` (the per-job ``TimeScheduler``: a job
without a window, or one best started at once, starts now; otherwise it is held with a
promise). At every whole hour while jobs are held, the engine hands all of them to
``replan_batch``, which solves the time-expanded assignment of the bound's model restricted
to them (``scheduling/batch_plan.py``, the LP relaxation, each job at its largest share) over
the room known now: the pool capacity free now, plus what running windowed jobs give back at
their declared ends, less the CriticalHeadroom reserve. Jobs whose optimal start is now start
now; the others stay held with the solver's slot as their promise, which jobs without a
window honour over their first hour as before. A held job whose pods do not fit its planned
cluster at its start (node by node, or the room was taken) is planned again by the per-job
planner. The objective is the bound's, each run's location-based carbon (facility power ×
the forecast's intensity over the run), with the electricity price weighed in at the low
class's own exchange rate (``grams_per_cny``, from the policy's low-class weights), plus a
tie-break toward earlier starts. Deadlines
are hard: no plan (the solver's or the per-job planner's) starts a job later than an hour
before its latest start, so a start that fails still leaves an hour to find room; past that
point the job starts now wherever it fits, or as soon as room frees. A solve that finds no
plan in time keeps every promise as it was (the greedy plan; counted in ``fallbacks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.fleet_data.power import PowerCurves
from computegrid.scheduling import (
    DEFAULT_POLICY,
    FleetState,
    Policy,
    Reservation,
    Window,
    window_for,
)
from computegrid.scheduling.batch_plan import BatchJob, plan_batch
from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.plugins import carbon as carbon_plugin
from computegrid.scheduling.plugins import headroom
from computegrid.scheduling.plugins import price as price_plugin
from computegrid.scheduling.state import TYPE_CODES, BoolArray, FloatArray
from computegrid.scheduling.timeshift import (
    CAPACITY_FILTERS,
    FleetForecast,
    fits_empty_node,
    pool_capacity,
)
from computegrid.sim.timed import ComputegridTimed
from computegrid.sim.trace import SimJob

# The last hour before a job's latest start is never planned: a start that fails there (the
# pods do not fit node by node, or the room was taken) still leaves an hour to find room.
DEADLINE_MARGIN_S = HOUR_S
# The price, weighed against carbon as the low class's score does: with the default weights
# carbon 5 on a 0-1,000 g/kWh scale against price 1 on a 0-1 CNY/kWh scale
# (scheduling/policy.py): 5/1000 per g = 1 per CNY, so 1 CNY/kWh counts as 200 gCO2e/kWh.
# Chosen on the training seeds (docs/sim.md, session 6): the same carbon as carbon alone, and
# the electricity no dearer than the per-job planner's. ``grams_per_cny`` reads it from the
# policy, so a policy file with other low-class weights moves the joint plan with them.
G_PER_CNY = 200.0
# Per hour of delay, in gCO2e: far below any real difference between options (a 1 kW job
# for an hour is hundreds of grams), so it only breaks exact ties toward the earlier start.
DELAY_TIE_G_PER_H = 1e-3
# computegrid-timed-batch-yield-freed: the joint plan is also re-solved when a completion frees
# room, at most once per 30 min (a whole hour's re-plan counts). Chosen at 2,000 jobs (session
# 10): 1,800 s was lower than 900 s on 4 of 5 seeds, and cheaper; every second was no better.
FREED_REPLAN_GAP_S = 1800.0


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


class ComputegridBatch(ComputegridTimed):
    """computegrid-timed on arrival; all held jobs re-planned jointly every whole hour."""

    batch = True  # the engine calls replan_batch at whole hours while jobs are held
    node_fit_now = True  # offer "start now" only where the pods fit node by node (session 10)

    def __init__(
        self,
        curves: PowerCurves,
        policy: Policy = DEFAULT_POLICY,
        *,
        time_limit_s: float = 10.0,
        integer: bool = False,
        margin_h: float = DEADLINE_MARGIN_S / HOUR_S,
        g_per_cny: float | None = None,
        unknown_run_h: float = 1.0,
        replan_on_free_s: float = 0.0,
        replan_failed_starts: bool = False,
    ) -> None:
        # unknown_run_h = 0: promises yield to every job without a window (the -yield variant)
        super().__init__(curves, policy, unknown_run_h=unknown_run_h)
        # > 0: the engine also re-plans when a completion frees room, at most once per this
        self.replan_on_free_s = replan_on_free_s
        # True: held starts that fail the node check are planned jointly again, with every
        # held job, before the per-job fallback (once per instant; the engine asks)
        self.replan_failed_starts = replan_failed_starts
        # None: the policy's own low-class exchange rate (200 with the default weights)
        self.g_per_cny = grams_per_cny(policy) if g_per_cny is None else g_per_cny
        self.margin_s = margin_h * HOUR_S
        self.name = "computegrid-timed-batch" + ("-yield" if unknown_run_h == 0 else "")
        self.name += "-freed" if replan_on_free_s > 0 else ""
        self.name += "-retry" if replan_failed_starts else ""
        self.time_limit_s = time_limit_s
        self.integer = integer
        self.solves = 0
        self.fallbacks = 0  # solves with no plan in time: every promise kept as it was
        self.time_limits = 0  # solves stopped at the time limit with a plan (not proven optimal)
        self.solve_s = 0.0
        self.largest = 0  # variables of the largest solve
        guard = self.planner.headroom
        self.reserve = float(getattr(guard, "reserve", 0.0)) if guard is not None else 0.0

    def window(self, job: SimJob, now_s: float) -> Window:
        """As computegrid-timed, with the margin before the latest start: a windowed job is
        planned no later than latest start − margin, and once past that it starts now
        wherever it fits (else it waits for room, as a job without a window would)."""
        if job.deadline_s is None:
            return super().window(job, now_s)
        cutoff = job.deadline_s - job.duration_s - self.margin_s
        return window_for(
            job.request.sensitivity,
            now_s,
            duration_s=job.duration_s,
            deadline_s=cutoff + job.duration_s if now_s < cutoff else None,
        )

    def replan_batch(
        self,
        held: Mapping[int, tuple[float, int]],
        jobs: Sequence[SimJob],
        state: FleetState,
        now_s: float,
    ) -> dict[int, tuple[int, float]]:
        """Held job → its new (cluster, start); start ≤ now means start now. Jobs left out
        keep their plan (no room for any option now, or no plan in time)."""
        if self.book is None or not held:
            return {}
        batch: list[BatchJob] = []
        forecast = self.forecast(now_s)
        for key in held:
            job = jobs[key]
            option = self._options(key, job, state, now_s, forecast)
            if option is not None:
                batch.append(option)
        plan = plan_batch(batch, self._room(state, now_s), now_s, integer=self.integer,
                          time_limit_s=self.time_limit_s)  # fmt: skip
        self.solves += 1
        if plan is None:
            self.fallbacks += 1
            return {}
        self.solve_s += plan.solve_s
        self.largest = max(self.largest, plan.variables)
        self.time_limits += plan.status != "optimal"
        out: dict[int, tuple[int, float]] = {}
        for key_s, (cluster, start) in plan.choice.items():
            key = int(key_s)
            old = self.book.remove(key_s)
            # none: planned to start now by an earlier solve, and its start failed since
            assert old is not None or self.replan_failed_starts, f"held job {key} had no promise"
            out[key] = (cluster, start)
            if start > now_s + 1e-6:
                if old is None:
                    r = jobs[key].request
                    vector = state.request_vector(r)
                    assert vector is not None
                    code, amounts = TYPE_CODES[r.compute_type], r.parallelism * vector
                else:
                    code, amounts = old.compute_type_code, old.amounts
                self.book.add(Reservation(key_s, cluster, code, start,
                                          start + jobs[key].duration_s, amounts))  # fmt: skip
        return out

    def _options(
        self, key: int, job: SimJob, state: FleetState, now_s: float, forecast: FleetForecast
    ) -> BatchJob | None:
        """Every (cluster, start) the job may take from now: whole hours up to its latest
        start, clusters its filters allow whatever the load (type, budget, a pod fits)."""
        r = job.request
        window = window_for(r.sensitivity, now_s, deadline_s=job.deadline_s,
                            duration_s=job.duration_s)  # fmt: skip
        if window.late:
            return None
        starts = window.starts(r.sensitivity, self.planner.horizon_h)
        latest = window.latest_start_s
        assert latest is not None
        starts = starts[(starts <= latest - self.margin_s) | (starts == starts[0])]
        allowed = np.flatnonzero(self._static(job, state))
        vector = state.request_vector(r)
        if not len(allowed) or vector is None:
            return None
        carbon = forecast.mean_over("carbon", starts, job.duration_s)[:, allowed]
        if self.g_per_cny:  # the price too, at a fixed exchange rate
            price = forecast.mean_over("price", starts, job.duration_s)[:, allowed]
            carbon = carbon + self.g_per_cny * price
        pue = np.array([PUE[state.clusters[c].region] for c in allowed])
        grams = it_power_kw(r) * pue[None, :] * carbon * job.duration_s / HOUR_S
        delay_h = (starts - now_s) / HOUR_S
        cost = grams + DELAY_TIE_G_PER_H * delay_h[:, None]
        keep = np.ones(cost.shape, dtype=bool)
        if self.node_fit_now and starts[0] <= now_s + 1e-6:
            # "start now" only where the pods fit node by node now (the engine's own check)
            keep[0] = state.pods_fitting_per_cluster(r)[allowed] >= r.parallelism
        if not keep.any():
            return None
        keep_flat = keep.reshape(-1)
        return BatchJob(
            key=str(key),
            type_code=TYPE_CODES[r.compute_type],
            duration_s=job.duration_s,
            demand=r.parallelism * vector,
            cluster=np.tile(allowed, len(starts)).astype(np.int64)[keep_flat],
            start_s=np.repeat(starts, len(allowed))[keep_flat],
            cost=cost.reshape(-1)[keep_flat],
        )

    def _static(self, job: SimJob, state: FleetState) -> BoolArray:
        """The scheduler's filters that do not depend on the load, and a pod fits a node."""
        ev = self.planner.scheduler.schedule(job.request, state).evaluation
        ok = fits_empty_node(job.request, state)
        for plugin, mask in zip(ev.filters, ev.masks, strict=True):
            if plugin.name not in CAPACITY_FILTERS:
                ok = ok & mask
        return np.asarray(ok, dtype=bool)

    def _room(self, state: FleetState, now_s: float) -> FloatArray:
        """[slots, clusters, types, resources] from the slot of now: free now, plus each
        running windowed job's room from the slot after its declared end, less the reserve."""
        assert self.book is not None
        first = int(np.floor(now_s / HOUR_S))
        slots = int(self.planner.horizon_h) + 26  # the latest start plus the longest run
        room = np.zeros((slots, state.size, len(TYPE_CODES), len(state.resources)))
        keep = [state.resource_index[r] for r in headroom.RESOURCES if r in state.resource_index]
        for code in range(len(TYPE_CODES)):
            alloc, free = pool_capacity(code, state)
            reserve = np.zeros_like(alloc)
            reserve[:, keep] = self.reserve * alloc[:, keep]
            room[:, :, code] = free - reserve
        for r in self.book.releases.values():
            slot = max(int(np.floor(r.end_s / HOUR_S)) + 1 - first, 0)
            if slot < slots:
                room[slot:, r.cluster, r.compute_type_code] += r.amounts
        return room

    def report(self) -> str:
        return (f"{self.name}: {self.solves} hourly solves, {self.fallbacks} without a plan "
                f"(greedy kept), {self.time_limits} at the time limit, {self.solve_s:.1f} s "
                f"solving, largest {self.largest} variables")  # fmt: skip
