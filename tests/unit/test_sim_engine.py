"""The event replay: queueing, the same core as the operator, and properties over traces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computegrid.api.common import GPU, ComputeType, LatencySensitivity, Region
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.fleet_data.power import build_curves
from computegrid.scheduling import Decision, FleetState, JobRequest, Scheduler, window_for
from computegrid.scheduling.capacity_price import RESOURCES, CapacityPrices
from computegrid.scheduling.energy import PUE
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.bound import lower_bound
from computegrid.sim.engine import replay
from computegrid.sim.metrics import JobArrays, curve_hours, policy_metrics
from computegrid.sim.placers import KNOWN_POLICIES, has_room, make_placer, within_budget
from computegrid.sim.trace import SimJob, synthetic_trace, with_windows

FLEET = load_national_fleet()
LATENCY = load_latency_model()
CURVES = build_curves(FLEET.clusters)
TIANFU = FLEET.by_name("chengdu-chongqing-tianfu")  # 2 GPU nodes of 8 GPUs
TIANFU_CURVES = build_curves([TIANFU])


def placer_on(policy: str, state: FleetState, jobs=(), **kw):
    """``make_placer``, and for ``computegrid-priced`` free room (all prices 0): its prices
    are tested in test_capacity_price.py and test_sim_prices.py; here it keeps the engine's
    invariants like every other policy. ``lp-plan-replay`` gets the plan of the bound on
    ``jobs`` and the (still idle) ``state``'s fleet (test_sim_lp_replay.py)."""
    if policy.startswith("lp-plan-replay"):
        arrays = JobArrays.of(list(jobs))
        window = kw["curves"].window(curve_hours(arrays))
        bound = lower_bound(list(jobs), arrays, state, window, rounded_plan=True)
        kw["lp_plan"] = bound.rounded_plan if policy.endswith("-rounded") else bound.plan
    if policy == "computegrid-priced":
        table = np.zeros((1, state.size, len(TYPE_CODES), len(RESOURCES)))
        kw["prices"] = CapacityPrices(0.0, table)
    return make_placer(policy, **kw)


def gpu_job(name: str, arrival_s: float, pods: int, hours: float = 1.0) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": 8.0, GPU: 8.0}, pods,
                         ComputeType.INTELLIGENT, LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, arrival_s, hours * 3600, "test")


@pytest.mark.parametrize("policy", KNOWN_POLICIES)
def test_a_job_that_fits_nowhere_waits_until_capacity_frees(policy):
    # a takes both GPU nodes for 1 h from t=0; b (one node) arrives at 10 s and starts at
    # 3600 s when a ends: a wait of 3590 s. c, arriving later but just as big, queues behind.
    # computegrid's CriticalHeadroom (low jobs keep 2 % of the cluster's 16 GPUs = 0.32):
    # a and b each start on an idle cluster (allowed); c after b would leave 16 − 8 − 8 = 0
    # GPUs, 0 % < 2 %, so it waits for b to end: starts at 7200 s, ends at 10800 s (the
    # time-aware computegrid too: the same filters; these jobs have no window).
    jobs = [gpu_job("a", 0, 2), gpu_job("b", 10, 1), gpu_job("c", 20, 1)]
    state = FleetState([TIANFU.snapshot()], LATENCY)
    run = replay(jobs, state, placer_on(policy, state, jobs, curves=TIANFU_CURVES),
                 TIANFU_CURVES)  # fmt: skip
    # lp-plan-replay(-rounded): the LP plans b and c at arrival (a takes the slack: one job,
    # not two), neither fits then, and computegrid-timed decides for both from then.
    c_start = 7200.0 if policy.startswith(("computegrid", "lp-plan-replay")) else 3600.0
    np.testing.assert_array_equal(run.start_s, [0.0, 3600.0, c_start])
    np.testing.assert_array_equal(run.end_s, [3600.0, 7200.0, c_start + 3600.0])
    assert run.overcommits == 0
    # every node is free again at the end
    np.testing.assert_allclose(state.node_free, state.node_alloc)


def test_carbon_is_accounted_over_the_actual_run():
    jobs = [gpu_job("a", 0, 2), gpu_job("b", 10, 1)]
    state = FleetState([TIANFU.snapshot()], LATENCY)
    run = replay(jobs, state, make_placer("nearest"), TIANFU_CURVES)
    m = policy_metrics(run, JobArrays.of(jobs), FleetState([TIANFU.snapshot()], LATENCY),
                       TIANFU_CURVES)  # fmt: skip
    # a: 2 pods × (8 × 10 W + 8 × 400 W) = 6.56 kW × PUE 1.2 over replay hour 0;
    # b: 3.28 kW × 1.2 over hour 1 (it waited): g = kW × intensity of that hour.
    hour0, hour1 = TIANFU_CURVES.window(2)["carbon"][:, 0]
    expected = 6.56 * 1.2 * hour0 + 3.28 * 1.2 * hour1
    assert m["carbon_t"] == pytest.approx(expected / 1e6)
    assert m["mean_wait_s"] == pytest.approx(3590 / 2)
    assert PUE[TIANFU.region] == 1.2


def test_computegrid_placer_is_the_operators_scheduler():
    jobs = synthetic_trace(200, FLEET.clusters, LATENCY, seed=3, days=0.5)
    state = FleetState(FLEET.snapshots(2), LATENCY)
    state.update_power(*CURVES.at(0))
    placer = make_placer("computegrid")
    core = Scheduler()
    for j in jobs[:50]:
        expected = core.schedule(j.request, state)
        got = placer.choose(j.request, state)
        assert got == (expected.index if isinstance(expected, Decision) else None)
        if got is not None:
            state.reserve(got, j.request)


BUDGETED = [p for p in KNOWN_POLICIES if p != "always-west"]


def west(state: FleetState) -> np.ndarray:
    return np.array([c.region is Region.WEST for c in state.clusters])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), count=st.integers(5, 80), scale=st.integers(1, 3))
def test_no_policy_overcommits_and_budgeted_ones_never_violate(seed, count, scale):
    jobs = with_windows(synthetic_trace(count, FLEET.clusters, LATENCY, seed=seed, days=0.5),
                        seed=seed)  # fmt: skip
    arrays = JobArrays.of(jobs)
    for policy in KNOWN_POLICIES:
        state = FleetState(FLEET.snapshots(scale), LATENCY)
        run = replay(jobs, state, placer_on(policy, state, jobs, seed=seed, curves=CURVES), CURVES)
        assert run.overcommits == 0
        # The trace ends and the fleet empties: a job still queued fits no allowed cluster
        # even when idle (at scale 1, 4 pods × 8 GPUs exceed every cluster's 16-24 GPUs).
        idle = FleetState(FLEET.snapshots(scale), LATENCY)
        for j in np.flatnonzero(~run.placed):
            allowed = has_room(jobs[j].request, idle)
            allowed &= (
                west(idle) if policy == "always-west" else within_budget(jobs[j].request, idle)
            )
            assert not allowed.any(), (policy, jobs[j])
        placed = run.placed
        assert (run.start_s[placed] >= arrays.arrival_s[placed]).all()
        # capacity at every start instant: CPU in use per cluster ≤ the cluster's CPU
        cpu_cap = state.cluster_alloc[:, state.resource_index["cpu"]]
        for t in np.unique(run.start_s):
            live = (run.start_s <= t) & (run.end_s > t)
            used = np.bincount(run.cluster[live], weights=arrays.cpu[live], minlength=state.size)
            assert (used <= cpu_cap + 1e-6).all()
        if policy in BUDGETED:
            assert (run.latency_ms[placed] <= arrays.budget_ms[placed] + 1e-9).all()
        # Time-shifting: a windowed job never starts after deadline − duration unless it had
        # to queue (a late start is then counted as a miss, not hidden).
        if policy.startswith("computegrid-timed"):
            windowed = placed & np.isfinite(arrays.deadline_s)
            latest = arrays.deadline_s - arrays.duration_s
            assert (run.start_s[windowed] <= latest[windowed] + 1e-6).all()


def starts_allowed(job: SimJob, start: float) -> bool:
    """Started on arrival, or a windowed job at one of the starts the bound offers it."""
    if start == job.arrival_s:
        return True
    if job.deadline_s is None:
        return False
    w = window_for(job.request.sensitivity, job.arrival_s, deadline_s=job.deadline_s,
                   duration_s=job.duration_s)  # fmt: skip
    return bool(np.isclose(w.starts(job.request.sensitivity), start).any())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), count=st.integers(5, 60))
def test_the_bound_never_exceeds_a_feasible_policy(seed, count):
    # Ample capacity (scale 4): every budgeted policy starts each job on arrival, or (the
    # time-aware one) a windowed job at one of its candidate starts, so each schedule is a
    # feasible point of the time-expanded LP and its carbon is ≥ the LP optimum.
    jobs = with_windows(synthetic_trace(count, FLEET.clusters, LATENCY, seed=seed, days=0.5),
                        seed=seed)  # fmt: skip
    arrays = JobArrays.of(jobs)
    idle = FleetState(FLEET.snapshots(4), LATENCY)
    carbon = {}
    for policy in BUDGETED:
        state = FleetState(FLEET.snapshots(4), LATENCY)
        run = replay(jobs, state, placer_on(policy, state, jobs, seed=seed, curves=CURVES), CURVES)
        if not all(
            starts_allowed(job, start) for job, start in zip(jobs, run.start_s, strict=True)
        ):
            continue
        carbon[policy] = policy_metrics(run, arrays, idle, CURVES)["carbon_t"]
    bound = lower_bound(jobs, arrays, idle, CURVES.window(curve_hours(arrays)))
    assert bound.slack_jobs == 0
    assert bound.job_carbon_kg.sum() / 1e3 == pytest.approx(bound.carbon_t)  # per job, summed
    assert carbon  # at least one policy ran everything on arrival
    for policy, value in carbon.items():
        assert bound.carbon_t <= value * (1 + 1e-7), policy
    # Capacity held at the instants the LP overfills: tighter, and still below every policy
    # (each keeps capacity at every instant, on every node).
    tight = lower_bound(jobs, arrays, idle, CURVES.window(curve_hours(arrays)),
                        instant_rounds=4)  # fmt: skip
    assert tight.instants is not None and tight.slack_jobs == 0
    assert bound.carbon_t <= tight.carbon_t * (1 + 1e-7)
    for policy, value in carbon.items():
        assert tight.carbon_t <= value * (1 + 1e-6), policy
    # Jobs placed whole (GPU jobs, then every job): LP ≤ mixed dual bound ≤ incumbent, and
    # the dual bound, proved or cut short by the time limit, stays below every schedule of
    # whole jobs. (A policy's schedule is a point of the MILP too: its jobs are whole.)
    for integral in ("gpu", "all"):
        mixed = lower_bound(jobs, arrays, idle, CURVES.window(curve_hours(arrays)),
                            integral=integral, milp_time_limit_s=10.0).mixed  # fmt: skip
        assert mixed is not None and not mixed.slack_forced
        assert bound.carbon_t <= mixed.dual_bound_t * (1 + 1e-6), integral
        if mixed.incumbent_t is not None:
            assert mixed.dual_bound_t <= mixed.incumbent_t * (1 + 1e-6), integral
        for policy, value in carbon.items():
            assert mixed.dual_bound_t <= value * (1 + 1e-6), (integral, policy)


def test_the_time_aware_policy_defers_a_windowed_job_into_the_valley():
    # One 2 h analytics job from Chengdu at replay hour 0 (00:00 Beijing, 3 April), due by
    # 14:00: the planner looks at every start 00:00…12:00 on every cluster; the engine holds
    # the job and starts it at the planned hour, where the curve is no higher than now.
    request = JobRequest("a/j", "chengdu", {"cpu": 8.0, "memory": 32.0 * 2**30},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    job = SimJob(request, 0.0, 7200.0, "analytics", deadline_s=14 * 3600.0)
    state = FleetState(FLEET.snapshots(), LATENCY)
    placer = make_placer("computegrid-timed", curves=CURVES)
    run = replay([job], state, placer, CURVES)
    assert run.deferred == 1 and run.placed.all()
    start, c = float(run.start_s[0]), int(run.cluster[0])
    assert 0 < start <= 12 * 3600 and start % 3600 == 0
    window = CURVES.window(16)["carbon"][:, c]
    then = window[int(start // 3600)] + window[int(start // 3600) + 1]
    assert then <= window[0] + window[1]  # two hours from the start vs from now
    assert placer.book is not None and len(placer.book) == 0  # the promise was released


def test_a_data_job_starts_when_its_data_has_arrived_and_the_move_is_counted():
    # 100 GiB from Shanghai (in no cluster's city here) to Tianfu: 10 Gbps between the hubs,
    # 100 × 2^30 × 8 / 10^10 = 85.9 s before the pods start; the capacity is held from 0.
    from computegrid.fleet_data import load_network_model
    from computegrid.scheduling import DataInput, JobData

    data = JobData((DataInput("shanghai", 100.0),), load_network_model(), run_hours=1.0)
    request = JobRequest("d", "shanghai", {"cpu": 8.0, GPU: 8.0}, 1, ComputeType.INTELLIGENT,
                         LatencySensitivity.LOW, data=data)  # fmt: skip
    jobs = [SimJob(request, 0.0, 3600.0, "test")]
    state = FleetState([TIANFU.snapshot()], LATENCY)
    run = replay(jobs, state, make_placer("computegrid", curves=TIANFU_CURVES), TIANFU_CURVES)
    moving = 100 * 2**30 * 8 / 10e9
    np.testing.assert_allclose(run.start_s, [moving])
    np.testing.assert_allclose(run.end_s, [moving + 3600.0])
    metrics = policy_metrics(run, JobArrays.of(jobs), state, TIANFU_CURVES)
    # 100 GiB = 107.37 GB × 0.001875 kWh/GB × 536.6 g/kWh = 108 g; × 0.50 CNY = 53.7 CNY
    assert metrics["transfer_carbon_t"] == pytest.approx(107.374 * 0.001875 * 536.6 / 1e6, rel=1e-3)
    assert metrics["transfer_cny"] == pytest.approx(53.687, rel=1e-3)
    assert metrics["data_jobs"] == 1 and metrics["data_jobs_moved"] == 1


class QuietPlacer:
    """What the engine tells a time-aware placer and these scripted ones ignore."""

    def release(self, key):
        pass

    def started(self, key, job, state, cluster, end_s):
        pass

    def finished(self, key, now_s):
        pass

    def choose(self, job, state):
        raise NotImplementedError


class ScriptedPlanner(QuietPlacer):
    """A time-aware placer whose answers are scripted: one plan, then re-plans by hour."""

    name = "scripted"
    rolling = True

    def __init__(self, first: tuple[int, float], moves: dict[float, tuple[int, float]]) -> None:
        self.first, self.moves = first, moves
        self.asked: list[float] = []
        self.released: list[int] = []

    def plan(self, key, job, state, now_s):
        return self.first

    def replan(self, key, job, state, now_s):
        self.asked.append(now_s)
        return self.moves.get(now_s)

    def release(self, key):
        self.released.append(key)


def analytics_job(deadline_h: float) -> SimJob:
    request = JobRequest("a/j", "chengdu", {"cpu": 8.0, "memory": 32.0 * 2**30},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, 600.0, 7200.0, "analytics", deadline_s=deadline_h * 3600.0)


@pytest.mark.parametrize(
    ("moves", "cluster", "start_h", "asked_h"),
    [
        ({}, 0, 5.0, [1, 2, 3, 4]),  # never moved: starts as first planned (not asked at 5 h)
        ({2 * 3600.0: (1, 2 * 3600.0)}, 1, 2.0, [1, 2]),  # moved to "now" at the 2 h re-plan
        ({1 * 3600.0: (2, 3 * 3600.0)}, 2, 3.0, [1, 2]),  # moved to a later plan, still held
    ],
)
def test_held_jobs_are_replanned_every_whole_hour(moves, cluster, start_h, asked_h):
    # Arrival at 0:10, planned for 5 h on cluster 0. The engine asks again at each whole hour
    # while the job is held (1 h, 2 h, …) and follows a move; the stale plan never starts it.
    planner = ScriptedPlanner((0, 5 * 3600.0), moves)
    state = FleetState(FLEET.snapshots(), LATENCY)
    run = replay([analytics_job(12)], state, planner, CURVES)
    assert (int(run.cluster[0]), float(run.start_s[0])) == (cluster, start_h * 3600.0)
    assert run.deferred == 1
    assert planner.asked == [h * 3600.0 for h in asked_h]


def test_rolling_replan_keeps_a_lone_jobs_plan():
    # Alone on the fleet and with a perfect forecast, nothing can beat the first plan: the
    # rolling planner asks every hour and never moves it.
    job = analytics_job(14)
    runs = {}
    for name in ("computegrid-timed", "computegrid-timed-rolling"):
        placer = make_placer(name, curves=CURVES)
        runs[name] = replay([job], FleetState(FLEET.snapshots(), LATENCY), placer, CURVES)
        assert placer.replans == 0  # type: ignore[attr-defined]
    static, rolling = runs.values()
    assert rolling.start_s[0] == static.start_s[0] > job.arrival_s
    assert rolling.cluster[0] == static.cluster[0]


class ScriptedBatch(QuietPlacer):
    """A batch placer that records when the engine asks it to re-plan, and moves nothing."""

    name = "scripted-batch"
    batch = True

    def __init__(self, plans: dict[str, float], gap_s: float) -> None:
        self.plans = plans  # job name → planned start (cluster 0); ≤ arrival: start now
        self.replan_on_free_s = gap_s
        self.asked: list[float] = []

    def plan(self, key, job, state, now_s):
        return 0, max(self.plans[job.request.name], now_s)

    def replan_batch(self, held, jobs, state, now_s):
        self.asked.append(now_s)
        return {}


def cpu_job(name: str, arrival_s: float, run_s: float) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": 8.0, "memory": 32.0 * 2**30},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, arrival_s, run_s, "analytics", deadline_s=24 * 3600.0)


@pytest.mark.parametrize(
    ("gap_s", "asked_s"),
    [
        # off: the whole hours while the job is held, 1 h to 5 h (due at 5 h, started then)
        (0.0, [3600, 7200, 10800, 14400, 18000]),
        # the completion at 1:40 asks too; the one at 1:45 is within 15 min of it: not
        (900.0, [3600, 6000, 7200, 10800, 14400, 18000]),
        # 5 min apart is enough for a gap of 200 s: both completions ask
        (200.0, [3600, 6000, 6300, 7200, 10800, 14400, 18000]),
        # both completions fall within 80 min of the 1 h re-plan (an ask too): neither asks
        (4800.0, [3600, 7200, 10800, 14400, 18000]),
    ],
)
def test_a_batch_placer_may_also_replan_when_a_completion_frees_room(gap_s, asked_s):
    # a and c start at once and end at 1:40 and 1:45; b is held for 5 h. Completions while b
    # is held ask for a joint re-plan, at most once per gap (whole hours count as asks).
    jobs = [cpu_job("a", 600.0, 5400.0), cpu_job("b", 700.0, 7200.0),
            cpu_job("c", 800.0, 5500.0)]  # fmt: skip
    planner = ScriptedBatch({"a": 0.0, "b": 5 * 3600.0, "c": 0.0}, gap_s)
    run = replay(jobs, FleetState(FLEET.snapshots(), LATENCY), planner, CURVES)
    assert planner.asked == asked_s
    assert run.start_s.tolist() == [600.0, 5 * 3600.0, 800.0]


class RetryBatch(QuietPlacer):
    """A batch placer whose joint plans are scripted per call; a per-job plan after the first
    (the engine's fallback for a failed held start) sends the job to cluster 2 at once."""

    name = "retry-batch"
    batch = True

    def __init__(self, first: dict[str, tuple[int, float]], second: dict[int, tuple[int, float]],
                 retry: bool) -> None:  # fmt: skip
        self.first, self.second = first, second  # second: the 2nd joint plan at 1 h
        self.replan_failed_starts = retry
        self.asked: list[tuple[float, list[int]]] = []
        self.planned: set[str] = set()

    def plan(self, key, job, state, now_s):
        name = job.request.name
        if name in self.planned:
            return 2, now_s
        self.planned.add(name)
        return self.first[name]

    def replan_batch(self, held, jobs, state, now_s):
        self.asked.append((now_s, sorted(held)))
        return self.second if [t for t, _ in self.asked].count(now_s) == 2 else {}


def general_job(name: str, parallelism: int, arrival_s: float) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": 64.0, "memory": 256.0 * 2**30}, parallelism,
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, arrival_s, 3 * 3600.0, "analytics", deadline_s=24 * 3600.0)


@pytest.mark.parametrize(
    ("retry", "second", "cluster", "start_h", "asked"),
    [
        # off: the failed start goes to the per-job fallback at once (cluster 2)
        (False, {1: (1, 3600.0)}, 2, 1.0, [(3600, [1])]),
        # on: planned jointly again at the same instant; it moves the job to cluster 1 now
        (True, {1: (1, 3600.0)}, 1, 1.0, [(3600, [1]), (3600, [1])]),
        # on, moved to a later hour: held again, starts then
        (True, {1: (1, 7200.0)}, 1, 2.0, [(3600, [1]), (3600, [1]), (7200, [1])]),
        # on, the second plan moves nothing: the fallback, once (no third plan at 1 h)
        (True, {}, 2, 1.0, [(3600, [1]), (3600, [1])]),
    ],
)
def test_a_failed_held_start_may_be_planned_jointly_again(retry, second, cluster, start_h,
                                                          asked):  # fmt: skip
    # "fill" takes 64 of each of cluster 0's three 96-core nodes from 0:10 for 3 h; "big"
    # (one 64-core pod) is held for cluster 0 at 1 h, where the pool has 96 cores free but no
    # node 64: its start fails the node check.
    jobs = [general_job("fill", 3, 600.0), general_job("big", 1, 700.0)]
    planner = RetryBatch({"fill": (0, 600.0), "big": (0, 3600.0)}, second, retry)
    state = FleetState(FLEET.snapshots(), LATENCY)
    assert state.pods_fitting_per_cluster(jobs[1].request)[0] == 3
    run = replay(jobs, state, planner, CURVES)
    assert (int(run.cluster[1]), float(run.start_s[1])) == (cluster, start_h * 3600.0)
    assert int(run.cluster[0]) == 0 and run.overcommits == 0
    assert planner.asked == [(float(t), keys) for t, keys in asked]


class WaitingBatch(RetryBatch):
    """RetryBatch with the operator's bound on re-plans after failed starts (``max_replans``)."""

    def __init__(self, first: dict[str, tuple[int, float]], max_replans: int | None,
                 wait_past_latest: bool) -> None:  # fmt: skip
        super().__init__(first, {}, retry=False)
        self.max_replans = max_replans
        self.wait_past_latest_start = wait_past_latest


@pytest.mark.parametrize(
    ("max_replans", "deadline_h", "wait_past", "cluster", "start_s", "waited", "left"),
    [
        # No bound: the failed start at 1 h is planned again at once (cluster 2 now).
        (None, 24.0, False, 2, 3600.0, 0, 0),
        # Re-plans used up (none allowed): waits on cluster 0 until "fill" ends at 3:10.
        (0, 24.0, False, 0, 600.0 + 3 * 3600.0, 1, 0),
        # ... unless its latest start (deadline 5 h − 3 h run = 2 h) comes first: then it is
        # planned again and starts where there is room now (cluster 2 at 2 h).
        (0, 5.0, False, 2, 7200.0, 1, 1),
        # The operator before session 15 waited on its member even then: starts at 3:10, late.
        (0, 5.0, True, 0, 600.0 + 3 * 3600.0, 1, 0),
        # One re-plan allowed: the first failed start is planned again at once.
        (1, 5.0, False, 2, 3600.0, 0, 0),
    ],
)
def test_a_held_job_past_its_replans_waits_for_its_cluster_until_its_latest_start(
    max_replans, deadline_h, wait_past, cluster, start_s, waited, left
):
    # As above: "big" is held for cluster 0 at 1 h, where no node has 64 cores free then.
    fill = general_job("fill", 3, 600.0)
    big = general_job("big", 1, 700.0)
    big = SimJob(big.request, big.arrival_s, big.duration_s, big.category,
                 deadline_s=deadline_h * 3600.0)  # fmt: skip
    planner = WaitingBatch({"fill": (0, 600.0), "big": (0, 3600.0)}, max_replans, wait_past)
    run = replay([fill, big], FleetState(FLEET.snapshots(), LATENCY), planner, CURVES)
    assert (int(run.cluster[1]), float(run.start_s[1])) == (cluster, start_s)
    assert (run.failed_starts, run.waited_for_room, run.left_at_latest_start) == (1, waited, left)
    metrics = policy_metrics(run, JobArrays.of([fill, big]), FleetState(FLEET.snapshots(), LATENCY),
                             CURVES)  # fmt: skip
    assert (metrics["waited_for_room"], metrics["left_at_latest_start"]) == (waited, left)
    # Waiting past the latest start (the operator before session 15) misses the deadline.
    assert metrics["deadline_misses"] == int(wait_past)
    assert run.overcommits == 0
