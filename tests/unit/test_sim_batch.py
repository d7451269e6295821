"""computegrid-timed-batch: held windowed jobs planned together every hour (sim/batch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computegrid.api.common import ComputeType, LatencySensitivity
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.fleet_data.power import build_curves
from computegrid.handlers.options import OperatorOptions
from computegrid.scheduling import (
    DEFAULT_POLICY,
    FleetState,
    JobRequest,
    Policy,
    Reservation,
    ReservationBook,
)
from computegrid.scheduling.energy import PUE
from computegrid.scheduling.policy import DEFAULT_WEIGHTS
from computegrid.scheduling.state import TYPE_CODES
from computegrid.scheduling.timeshift import pool_capacity
from computegrid.sim.batch import G_PER_CNY, ComputegridBatch, grams_per_cny
from computegrid.sim.bound import lower_bound
from computegrid.sim.metrics import JobArrays, curve_hours, energy_cost
from computegrid.sim.placers import make_placer
from computegrid.sim.trace import SimJob

FLEET = load_national_fleet()
LATENCY = load_latency_model()
CURVES = build_curves(FLEET.clusters)
H = 3600.0
GIB = 2.0**30


def analytics(arrival_h: float, run_h: float, slack_h: float, cpu: float = 8.0) -> SimJob:
    request = JobRequest("a/j", "chengdu", {"cpu": cpu, "memory": 32.0 * GIB},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, arrival_h * H, run_h * H, "analytics",
                  deadline_s=(arrival_h + run_h + slack_h) * H)  # fmt: skip


def carbon_t(job: SimJob, cluster: int, start_s: float) -> float:
    arrays = JobArrays.of([job])
    pue = np.array([PUE[c.region] for c in FLEET.clusters])
    window = CURVES.window(curve_hours(arrays) + 48)
    grams = energy_cost(arrays, np.array([cluster]), np.array([start_s]), pue, window)
    return float(grams["carbon_g"].sum()) / 1e6


def test_one_held_job_on_an_idle_fleet_takes_the_bounds_choice():
    # Alone on an idle fleet nothing binds, so the joint plan on carbon alone (no price) must
    # be the bound's own optimum: the cheapest (cluster, start) of the same model (a 2 h run
    # from 05:00 replay time with 30 h of slack; the optimum is not in the last hour the batch
    # planner leaves out).
    job = analytics(5, 2, 30)
    state = FleetState(FLEET.snapshots(), LATENCY)
    state.update_power(*CURVES.at(5))
    placer = ComputegridBatch(CURVES, g_per_cny=0.0)
    planned = placer.plan(0, job, state, 5 * H)
    assert planned is not None and planned[1] > 5 * H  # the per-job planner deferred it
    moved = placer.replan_batch({0: (planned[1], planned[0])}, [job], state, 5 * H)
    cluster, start = moved[0]
    arrays = JobArrays.of([job])
    bound = lower_bound([job], arrays, FleetState(FLEET.snapshots(), LATENCY),
                        CURVES.window(curve_hours(arrays) + 48))  # fmt: skip
    assert carbon_t(job, cluster, start) == pytest.approx(bound.carbon_t, rel=1e-9)
    assert cluster == int(np.argmax(bound.placement[0]))
    assert placer.solves == 1 and placer.fallbacks == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrival_h=st.integers(0, 40),
    run_h=st.floats(0.25, 10),
    slack_h=st.floats(0, 30),
    later_h=st.integers(0, 30),
)
def test_no_plan_starts_in_the_last_hour_before_the_latest_start(arrival_h, run_h, slack_h,
                                                                  later_h):  # fmt: skip
    # The per-job plan on arrival and the joint plan at a later whole hour both start the
    # job no later than latest start − 1 h, or now when that point has passed.
    job = analytics(arrival_h, run_h, slack_h)
    latest = job.deadline_s - job.duration_s  # type: ignore[operator]
    state = FleetState(FLEET.snapshots(), LATENCY)
    placer = ComputegridBatch(CURVES)
    now = job.arrival_s
    planned = placer.plan(0, job, state, now)
    assert planned is not None
    cluster, start = planned
    assert start == now or start <= latest - H + 1e-6
    if start == now:
        return
    at = min(float(now // H + 1 + later_h) * H, start)  # a whole hour while still held
    moved = placer.replan_batch({0: (start, cluster)}, [job], state, at)
    new_cluster, new_start = moved.get(0, (cluster, start))
    assert new_start >= at - 1e-6
    assert new_start <= max(latest - H, at) + 1e-6
    if new_start > at + 1e-6:  # still held: its promise is on the book at the new slot
        assert placer.book is not None
        promise = placer.book.items["0"]
        assert (promise.cluster, promise.start_s) == (new_cluster, new_start)


def test_promises_yield_to_work_without_a_window_only_in_the_yield_variant():
    # A deferred job has been promised all the room left on the cluster the operator's
    # scheduler would pick for a job without a window, over the next 3 h. That job honours
    # the promise over its first hour in computegrid-timed-batch (it goes elsewhere); in
    # computegrid-timed-batch-yield it cannot wait, so it takes its best cluster now and
    # the deferred job is planned again.
    request = JobRequest("a/now", "chengdu", {"cpu": 8.0, "memory": 32.0 * GIB},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    job = SimJob(request, 5 * H, 2 * H, "analytics")
    state = FleetState(FLEET.snapshots(), LATENCY)
    state.update_power(*CURVES.at(5))
    best = make_placer("computegrid").choose(request, state)
    assert best is not None
    _, free = pool_capacity(TYPE_CODES[request.compute_type], state)
    picked = {}
    for name in ("computegrid-timed-batch", "computegrid-timed-batch-yield"):
        placer = make_placer(name, curves=CURVES)
        assert isinstance(placer, ComputegridBatch) and placer.name == name
        placer.book = ReservationBook(state.size, len(state.resources))
        placer.book.add(Reservation("held", best, TYPE_CODES[request.compute_type], 5 * H,
                                    8 * H, free[best].copy()))  # fmt: skip
        planned = placer.plan(1, job, state, 5 * H)
        assert planned is not None and planned[1] == 5 * H  # no window: it starts now
        picked[name] = planned[0]
    assert picked["computegrid-timed-batch"] != best
    assert picked["computegrid-timed-batch-yield"] == best


def low_weights(**changes: float) -> Policy:
    weights = {k: dict(v) for k, v in DEFAULT_WEIGHTS.items()}
    weights[LatencySensitivity.LOW].update(changes)
    return Policy(weights=weights)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # default low class: carbon 5 over 0-1,000 g/kWh, price 1 over 0-1 CNY/kWh:
        # 1 CNY/kWh weighs (1/1)/(5/1000) = 200 g/kWh
        (Policy(), 200.0),
        (low_weights(PowerPrice=0), 0.0),  # carbon alone
        (low_weights(CarbonIntensity=3, PowerPrice=2), 2 / (3 / 1000)),  # 666.7 g per CNY
        # a price scale twice as wide halves a CNY's weight: (1/2)/(5/1000) = 100
        (Policy(plugin_args={"PowerPrice": {"ceiling": 2.0}}), 100.0),
        # a carbon scale half as wide doubles each gram's weight: (1/1)/(5/500) = 100
        (Policy(plugin_args={"CarbonIntensity": {"worst": 500.0}}), 100.0),
    ],
)
def test_the_joint_plan_prices_electricity_at_the_low_class_exchange_rate(policy, expected):
    assert grams_per_cny(policy) == pytest.approx(expected)
    assert ComputegridBatch(CURVES, policy).g_per_cny == pytest.approx(expected)
    assert ComputegridBatch(CURVES, policy, g_per_cny=50.0).g_per_cny == 50.0  # given wins


def test_the_default_exchange_rate_is_the_one_chosen_in_session_6():
    assert grams_per_cny(DEFAULT_POLICY) == G_PER_CNY


def test_a_low_class_blind_to_carbon_has_no_exchange_rate():
    with pytest.raises(ValueError, match=r"weights\.low\.CarbonIntensity must be > 0"):
        grams_per_cny(low_weights(CarbonIntensity=0))


def test_only_the_freed_variant_replans_when_room_frees():
    # The engine asks a batch placer to re-plan on a completion only when replan_on_free_s > 0.
    gaps = {name: make_placer(name, curves=CURVES).replan_on_free_s  # type: ignore[attr-defined]
            for name in ("computegrid-timed-batch", "computegrid-timed-batch-yield",
                         "computegrid-timed-batch-yield-freed")}  # fmt: skip
    assert gaps == {"computegrid-timed-batch": 0.0, "computegrid-timed-batch-yield": 0.0,
                    "computegrid-timed-batch-yield-freed": 1800.0}  # fmt: skip
    assert make_placer("computegrid-timed-batch-yield-freed", curves=CURVES).name == (
        "computegrid-timed-batch-yield-freed"
    )


@pytest.mark.parametrize("node_fit_now", [False, True])
def test_start_now_is_offered_only_where_the_pods_fit_node_by_node(node_fit_now):
    # Tianfu's two GPU nodes have 4 GPUs free each: 8 in the pool, but no node takes an
    # 8-GPU pod. The pool's room says "start now on Tianfu" would fit, the engine's node-by-node
    # check at the start would refuse it; with node_fit_now the joint plan is not offered it.
    # Later starts on Tianfu stay offered (who knows which nodes will be free then).
    state = FleetState(FLEET.snapshots(), LATENCY)
    tianfu = state.index["chengdu-chongqing-tianfu"]
    g = state.resource_index["nvidia.com/gpu"]
    block = state.rows_by_type_cluster[(TYPE_CODES[ComputeType.INTELLIGENT], tianfu)]
    for row in range(block.start, block.stop):
        state.node_free[row, g] = 4.0
    state.cluster_free[tianfu, g] = 4.0 * (block.stop - block.start)
    request = JobRequest("t/train", "chengdu", {"cpu": 32.0, "memory": 256 * GIB,
                         "nvidia.com/gpu": 8.0}, sensitivity=LatencySensitivity.LOW,
                         compute_type=ComputeType.INTELLIGENT)  # fmt: skip
    job = SimJob(request, 600.0, 2 * H, "ai-training", deadline_s=12 * H)
    placer = make_placer("computegrid-timed-batch-yield", curves=CURVES)
    placer.node_fit_now = node_fit_now  # type: ignore[attr-defined]
    option = placer._options(0, job, state, 600.0, placer.forecast(600.0))  # type: ignore[attr-defined]
    assert option is not None
    now = option.start_s == 600.0
    assert (tianfu in option.cluster[now]) is not node_fit_now
    assert tianfu in option.cluster[~now]  # a later start on Tianfu is still offered
    assert len(option.cluster[now]) > 0  # elsewhere, starting now still is


@pytest.mark.parametrize("retry", [False, True])
def test_a_held_start_without_a_promise_is_planned_again_only_in_the_retry_variant(retry):
    # A job an earlier joint plan told to start now has no promise on the book; if its start
    # fails the node check, the retry variant plans it jointly again (the engine asks), and a
    # later start puts its own amounts on the book. Without the variant that cannot happen.
    job = analytics(5, 2, 30, cpu=12.0)
    state = FleetState(FLEET.snapshots(), LATENCY)
    state.update_power(*CURVES.at(5))
    name = "computegrid-timed-batch-yield" + ("-retry" if retry else "")
    placer = make_placer(name, curves=CURVES)
    assert placer.name == name and placer.replan_failed_starts is retry  # type: ignore[attr-defined]
    planned = placer.plan(0, job, state, 5 * H)
    assert planned is not None and planned[1] > 5 * H
    assert placer.book is not None  # type: ignore[attr-defined]
    placer.book.remove("0")  # type: ignore[attr-defined]  # started "now" by an earlier plan
    if not retry:
        with pytest.raises(AssertionError, match="had no promise"):
            placer.replan_batch({0: (5 * H, planned[0])}, [job], state, 5 * H)  # type: ignore[attr-defined]
        return
    moved = placer.replan_batch({0: (5 * H, planned[0])}, [job], state, 5 * H)  # type: ignore[attr-defined]
    cluster, start = moved[0]
    assert start > 5 * H
    promise = placer.book.items["0"]  # type: ignore[attr-defined]
    assert (promise.cluster, promise.start_s, promise.end_s) == (cluster, start, start + 2 * H)
    assert promise.compute_type_code == TYPE_CODES[ComputeType.GENERAL]
    assert promise.amounts[state.resource_index["cpu"]] == 12.0
    assert promise.amounts[state.resource_index["memory"]] == 32.0 * GIB


def test_a_job_the_joint_plan_moved_max_changes_times_keeps_its_plan():
    # computegrid-timed-joint bounds the moves per job as the operator's --max-replans does:
    # once at its bound, a held job is left out of the joint plan (its promise kept).
    job = analytics(5, 2, 30)
    state = FleetState(FLEET.snapshots(), LATENCY)
    state.update_power(*CURVES.at(5))
    free = ComputegridBatch(CURVES, g_per_cny=0.0)
    assert free.plan(0, job, state, 5 * H) is not None
    best_cluster, best_start = free.replan_batch({0: (5 * H, 0)}, [job], state, 5 * H)[0]
    worse = (best_start + H, best_cluster)  # the record an hour after the joint optimum
    bounded = ComputegridBatch(CURVES, g_per_cny=0.0, max_changes=1)
    assert bounded.plan(0, job, state, 5 * H) is not None
    assert bounded.replan_batch({0: worse}, [job], state, 5 * H) == {0: (best_cluster, best_start)}
    assert bounded.changes == {0: 1}
    assert bounded.replan_batch({0: worse}, [job], state, 5 * H) == {}  # at its bound
    assert bounded.changes == {0: 1} and "0" in (bounded.book.items if bounded.book else {})
    # The operator's mirror: the LP rounded within the pools' allocatable capacity, promises
    # yielding to every job without a window, room back at declared ends (session 12);
    # session 11's whole-job version.
    joint = make_placer("computegrid-timed-joint", curves=CURVES)
    assert isinstance(joint, ComputegridBatch) and joint.name == "computegrid-timed-joint"
    assert (joint.max_changes, joint.integer, joint.planner.unknown_run_s) == (None, False, 0.0)
    assert joint.rounded and joint.overbook and joint.operator_mirror and joint.releases
    # A held job's re-plans after failed starts are bounded as the operator's --max-replans.
    assert joint.max_replans == OperatorOptions().max_replans == 3
    whole = make_placer("computegrid-timed-joint-whole", curves=CURVES)
    assert isinstance(whole, ComputegridBatch) and whole.name == "computegrid-timed-joint-whole"
    assert (whole.max_changes, whole.integer, whole.planner.unknown_run_s) == (None, True, H)
    assert not whole.rounded and whole.operator_mirror and not whole.releases


def test_the_operators_mirror_learns_run_times_only_from_jobs_that_finished():
    """computegrid-timed-joint scores jobs without a window over the runs of their shape that
    have finished by then (the operator learns from its succeeded jobs); the -now variant, as
    the operator of sessions 12-13, keeps the figures of now."""
    from computegrid.sim.engine import replay

    request = JobRequest("a/j", "chengdu", {"cpu": 2.0, "memory": 8.0 * GIB},
                         sensitivity=LatencySensitivity.LOW)  # fmt: skip
    # 30 jobs without a window, one an hour, each running 2.5 h: by the last arrival (29 h)
    # the 27 that arrived by 26.5 h have finished.
    jobs = [SimJob(request, i * H, 2.5 * H, "analytics") for i in range(30)]
    seen: list[int] = []
    placer = make_placer("computegrid-timed-joint", curves=CURVES)
    profile = placer.run_profile
    learn = profile.record

    def record(job: JobRequest, run_s: float) -> None:
        assert run_s == pytest.approx(2.5 * H)  # what it ran, told when it ended
        learn(job, run_s)

    profile.record = record  # type: ignore[method-assign]
    plan = placer.plan

    def planned(key, job, state, now_s):  # type: ignore[no-untyped-def]
        seen.append(profile.runs(job.request))
        return plan(key, job, state, now_s)

    placer.plan = planned  # type: ignore[method-assign]
    replay(jobs, FleetState(FLEET.snapshots(), LATENCY), placer, CURVES)
    assert seen == [max(i - 2, 0) for i in range(30)]  # job i sees the i - 2 that have ended
    assert profile.runs(request) == 30
    assert profile.weights(request) == pytest.approx([1.0, 1.0, 0.5])
    assert make_placer("computegrid-timed-joint-now", curves=CURVES).run_profile is None
