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

from computegrid.fleet_data.power import PowerCurves
from computegrid.scheduling import (
    DEFAULT_POLICY,
    FleetState,
    Policy,
    Reservation,
    Window,
)
from computegrid.scheduling.batch_plan import BatchJob, plan_batch, plan_whole
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.joint import (
    DEADLINE_MARGIN_S,
    grams_per_cny,
    job_options,
    margin_window,
    slot_room,
    static_mask,
)
from computegrid.scheduling.run_profile import RunProfile
from computegrid.scheduling.state import TYPE_CODES, FloatArray
from computegrid.scheduling.timeshift import FleetForecast
from computegrid.sim.timed import ComputegridTimed
from computegrid.sim.trace import SimJob

# The price, weighed against carbon as the low class's score does: with the default weights
# carbon 5 on a 0-1,000 g/kWh scale against price 1 on a 0-1 CNY/kWh scale
# (scheduling/policy.py): 5/1000 per g = 1 per CNY, so 1 CNY/kWh counts as 200 gCO2e/kWh.
# Chosen on the training seeds (docs/sim.md, session 6): the same carbon as carbon alone, and
# the electricity no dearer than the per-job planner's. ``grams_per_cny`` reads it from the
# policy, so a policy file with other low-class weights moves the joint plan with them.
G_PER_CNY = 200.0
# computegrid-timed-batch-yield-freed: the joint plan is also re-solved when a completion frees
# room, at most once per 30 min (a whole hour's re-plan counts). Chosen at 2,000 jobs (session
# 10): 1,800 s was lower than 900 s on 4 of 5 seeds, and cheaper; every second was no better.
FREED_REPLAN_GAP_S = 1800.0
# The operator's --max-replans default (handlers/options.py; a test holds them equal): in its
# mirror a held job whose start found no room is planned again this many times, then waits
# for room on its planned cluster until its latest start (sim/engine.py).
MAX_REPLANS = 3


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
        rounded: bool = False,
        overbook: bool = False,
        margin_h: float = DEADLINE_MARGIN_S / HOUR_S,
        g_per_cny: float | None = None,
        unknown_run_h: float = 1.0,
        replan_on_free_s: float = 0.0,
        replan_failed_starts: bool = False,
        max_changes: int | None = None,
        name: str | None = None,
        operator_mirror: bool = False,
        releases: bool | None = None,
        run_profile: RunProfile | None = None,
        max_replans: int | None = None,
    ) -> None:
        # unknown_run_h = 0: promises yield to every job without a window (the -yield variant)
        super().__init__(curves, policy, unknown_run_h=unknown_run_h, run_profile=run_profile)
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
        self.name = name or self.name
        # The operator's --max-replans: a held job the joint plan moved this many times keeps
        # its plan, and its promise's room is kept out of the batch; None: no bound.
        self.max_changes = max_changes
        # The operator's own bound on a held job's re-plans after failed starts (the engine
        # reads it); None: planned again after every failed start.
        self.max_replans = max_replans
        self.changes: dict[int, int] = {}
        # As the operator plans: on arrival in the job's whole window (the margin is the joint
        # plan's alone).
        self.operator_mirror = operator_mirror
        # Room counted back at running windowed jobs' declared ends; None: not in the mirror
        # of session 11's operator, which counted none (the operator counts them since 12).
        self.releases = (not operator_mirror) if releases is None else releases
        self.time_limit_s = time_limit_s
        self.integer = integer
        # The LP rounded greedily to whole jobs that keep the room (``plan_batch(rounded=…)``);
        # ``overbook``: that keep the pools' allocatable capacity only (the LP plans on the
        # room free now; the rounding may promise what running work will give back).
        self.rounded = (rounded or overbook) and not integer
        self.overbook = overbook
        self.solves = 0
        self.fallbacks = 0  # solves with no plan in time: every promise kept as it was
        self.time_limits = 0  # solves stopped at the time limit with a plan (not proven optimal)
        self.solve_s = 0.0
        self.largest = 0  # variables of the largest solve
        guard = self.planner.headroom
        self.reserve = float(getattr(guard, "reserve", 0.0)) if guard is not None else 0.0

    def window(self, job: SimJob, now_s: float) -> Window:
        """As computegrid-timed, with the margin before the latest start (``margin_window``)."""
        if job.deadline_s is None or self.operator_mirror:
            return super().window(job, now_s)
        return margin_window(job.request, now_s, job.deadline_s, job.duration_s, self.margin_s)

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
        bound = float("inf") if self.max_changes is None else self.max_changes
        movable = [k for k in held if self.changes.get(k, 0) < bound]
        at_bound = [str(k) for k in held if self.changes.get(k, 0) >= bound]
        kept = [self.book.items[k] for k in at_bound if k in self.book.items]
        batch: list[BatchJob] = []
        forecast = self.forecast(now_s)
        for key in movable:
            option = self._options(key, jobs[key], state, now_s, forecast)
            if option is not None:
                batch.append(option)
        room = self._room(state, now_s, kept)
        if self.integer:  # whole jobs, as the operator plans them (``plan_whole``)
            plan = plan_whole(batch, room, now_s, time_limit_s=self.time_limit_s)
        else:
            cap = self._room(state, now_s, kept, allocatable=True) if self.overbook else None
            plan = plan_batch(batch, room, now_s, integer=False, time_limit_s=self.time_limit_s,
                              rounded=self.rounded, round_room=cap)  # fmt: skip
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
            before = held.get(key)
            if before is None or before[1] != cluster or abs(max(start, now_s) - before[0]) >= 60:
                self.changes[key] = self.changes.get(key, 0) + 1
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
        """Every (cluster, start) the job may take from now (scheduling/joint.py)."""
        if job.deadline_s is None:
            return None
        return job_options(
            str(key),
            job.request,
            deadline_s=job.deadline_s,
            duration_s=job.duration_s,
            allowed=static_mask(self.planner.scheduler, job.request, state),
            state=state,
            forecast=forecast,
            now_s=now_s,
            g_per_cny=self.g_per_cny,
            horizon_h=self.planner.horizon_h,
            margin_s=self.margin_s,
            node_fit_now=self.node_fit_now,
        )

    def _room(
        self,
        state: FleetState,
        now_s: float,
        kept: Sequence[Reservation] = (),
        allocatable: bool = False,
    ) -> FloatArray:
        """Room per hour slot from now: free now less the reserve, plus each running windowed
        job's room after its declared end, less the promises kept out of the batch."""
        assert self.book is not None
        return slot_room(
            state,
            now_s,
            reserve=self.reserve,
            horizon_h=self.planner.horizon_h,
            releases=() if allocatable else self.book.releases.values(),
            held=kept,
            allocatable=allocatable,
        )

    def report(self) -> str:
        return (f"{self.name}: {self.solves} hourly solves, {self.fallbacks} without a plan "
                f"(greedy kept), {self.time_limits} at the time limit, {self.solve_s:.1f} s "
                f"solving, largest {self.largest} variables")  # fmt: skip
