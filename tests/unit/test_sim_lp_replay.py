"""lp-plan-replay: the LP bound's own plan replayed in the engine (sim/lp_replay.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.test_sim_metrics_bound import cluster  # the same two small clusters

from computegrid.api.common import ComputeType, LatencySensitivity, Region
from computegrid.fleet_data import load_latency_model
from computegrid.fleet_data.power import HOURS, PowerCurves
from computegrid.scheduling import FleetState, JobRequest
from computegrid.sim.bound import lower_bound
from computegrid.sim.bound_model import LpPlan
from computegrid.sim.engine import replay
from computegrid.sim.lp_replay import LpPlanReplay
from computegrid.sim.metrics import JobArrays, curve_hours, policy_metrics
from computegrid.sim.placers import make_placer
from computegrid.sim.trace import SimJob

H = 3600.0
LATENCY = load_latency_model()


def fleet(a_nodes: int = 1) -> FleetState:
    # a: west (PUE 1.2), 8-core nodes; b: east (PUE 1.25), two
    return FleetState([cluster("a", Region.WEST, a_nodes), cluster("b", Region.EAST, 2)],
                      LATENCY)  # fmt: skip


def curves(a_by_hour: list[float]) -> PowerCurves:
    """a's carbon per replay hour (the last value after), b flat at 500 g/kWh; a greener."""
    a = np.full(HOURS, a_by_hour[-1])
    a[: len(a_by_hour)] = a_by_hour
    carbon = np.stack([a, np.full(HOURS, 500.0)], axis=1)
    renewable = np.tile([0.8, 0.2], (HOURS, 1))
    return PowerCurves(("a", "b"), carbon, carbon, renewable, np.full((HOURS, 2), 0.5),
                       np.array([0.0, 0.0]))  # fmt: skip


def job(
    name: str, arrival_h: float, hours: float, deadline_h: float | None = None, cpu: float = 8.0
) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": cpu}, 1, ComputeType.GENERAL,
                         LatencySensitivity.LOW)  # fmt: skip
    deadline = None if deadline_h is None else deadline_h * H
    return SimJob(request, arrival_h * H, hours * H, "test", deadline_s=deadline)


def carbon_g(run, jobs, power: PowerCurves) -> float:
    return float(policy_metrics(run, JobArrays.of(jobs), fleet(), power)["carbon_t"]) * 1e6


def test_the_replay_follows_the_lps_plan_and_lands_on_the_bound():
    # a's carbon 100, 200, 300 g/kWh in hours 0, 1, 2, then 1,000; b 500 flat. Each job is
    # 8 cores (80 W) for 1 h, a fills a's only node. j1 (no window) arrives at 0, j3 at 0
    # with a deadline at 3 h (starts 0, 1 h, 2 h), j2 (no window) at 1 h. Knowing j2 comes,
    # the LP runs j1 on a at 0, j2 on a at 1 h and j3 on a at 2 h:
    # 0.08 kW × 1.2 × (100 + 200 + 300) = 57.6 g. (j3 at 1 h would push j2 to b:
    # 9.6 + 19.2 + 0.08 × 1.25 × 500 = 78.8 g.)
    power = curves([100.0, 200.0, 300.0, 1000.0])
    jobs = [job("j1", 0, 1), job("j3", 0, 1, deadline_h=3), job("j2", 1, 1)]
    arrays = JobArrays.of(jobs)
    bound = lower_bound(jobs, arrays, fleet(), power.window(curve_hours(arrays)))
    assert bound.carbon_t * 1e6 == pytest.approx(57.6)
    assert bound.plan is not None
    np.testing.assert_array_equal(bound.plan.cluster, [0, 0, 0])
    np.testing.assert_allclose(bound.plan.start_s, [0.0, 2 * H, 1 * H])
    assert bound.plan.split_jobs == 0
    placer = make_placer("lp-plan-replay", curves=power, lp_plan=bound.plan)
    run = replay(jobs, fleet(), placer, power)
    np.testing.assert_array_equal(run.cluster, [0, 0, 0])
    np.testing.assert_allclose(run.start_s, [0.0, 2 * H, 1 * H])
    assert run.overcommits == 0 and run.deferred == 1
    assert carbon_g(run, jobs, power) == pytest.approx(57.6)
    assert isinstance(placer, LpPlanReplay)
    counts = placer.diagnostics()
    assert (counts["held"], counts["held_started"], counts["held_failed"]) == (1, 1, 0)
    assert (counts["now_started"], counts["now_failed"], counts["no_plan"]) == (2, 0, 0)
    # The online planner, not knowing j2 comes, does worse on the same trace.
    online = replay(jobs, fleet(), make_placer("computegrid-timed", curves=power), power)
    assert carbon_g(online, jobs, power) > 57.6 + 1.0


def test_the_per_job_planner_decides_where_the_plan_has_no_room():
    # A plan written by hand that a's two nodes cannot keep: j0 and j0b (2 h) on a at 0 fill
    # it; j1 (no window) on a at 0 too: no room, so the per-job planner starts it now on b;
    # j2 (deadline 5 h) held for a at 1 h, when both still run there: planned again from
    # 1 h by the per-job planner, which holds it for a at 3 h (room at a later start: free
    # now less promises plus what the windowed j0 and j0b give back at their 2 h ends,
    # counted from the slot after, whole slots).
    power = curves([100.0])
    jobs = [job("j0", 0, 2, deadline_h=2), job("j0b", 0, 2, deadline_h=2), job("j1", 0, 1),
            job("j2", 0, 1, deadline_h=5)]  # fmt: skip
    plan = LpPlan(np.array([0, 0, 0, 0]), np.array([0.0, 0.0, 0.0, H]), np.ones(4))
    placer = LpPlanReplay(power, plan)
    run = replay(jobs, fleet(a_nodes=2), placer, power)
    np.testing.assert_array_equal(run.cluster, [0, 0, 1, 0])
    np.testing.assert_allclose(run.start_s, [0.0, 0.0, 0.0, 3 * H])
    assert run.overcommits == 0
    counts = placer.diagnostics()
    assert (counts["now_started"], counts["now_failed"]) == (2, 1)
    assert (counts["held"], counts["held_started"], counts["held_failed"]) == (1, 0, 1)
    assert (run.failed_starts, run.max_failed_starts) == (1, 1)  # the engine's count: j2's
    assert (counts["failed_pool_short"], counts["failed_fragmented"]) == (2, 0)  # a was full
    assert placer.fallback.book is not None and len(placer.fallback.book) == 0  # all released


def test_a_job_without_a_plan_or_past_its_planned_start_goes_to_the_per_job_planner():
    # j0 has no plan (cluster −1, as for a job the LP left to slack): the per-job planner
    # starts it on a. j1's plan (a at 0) is first read at 1 h, so it is past: the planner
    # decides (a is free again by then).
    power = curves([100.0])
    jobs = [job("j0", 0, 1), job("j1", 0, 1)]
    placer = LpPlanReplay(power, LpPlan(np.array([-1, 0]), np.array([np.nan, 0.0]), np.ones(2)))
    state = fleet()
    assert placer.plan(0, jobs[0], state, 0.0) == (0, 0.0)
    assert placer.plan(1, jobs[1], state, H) is not None
    counts = placer.diagnostics()
    assert (counts["no_plan"], counts["plan_passed"], counts["now_started"]) == (1, 1, 0)


def test_a_failed_start_with_the_room_in_fragments_is_told_apart():
    # a's two 8-core nodes hold j0 and j0b (5 cores each) on one node each: 6 cores free in
    # the pool, 3 on each node. j1 (6 cores), planned there too, fits the pool, not a node.
    power = curves([100.0])
    jobs = [job("j0", 0, 1, cpu=5.0), job("j0b", 0, 1, cpu=5.0), job("j1", 0, 1, cpu=6.0)]
    placer = LpPlanReplay(power, LpPlan(np.zeros(3, dtype=np.int64), np.zeros(3), np.ones(3)))
    run = replay(jobs, fleet(a_nodes=2), placer, power)
    np.testing.assert_array_equal(run.cluster, [0, 0, 1])
    counts = placer.diagnostics()
    assert (counts["now_started"], counts["now_failed"]) == (2, 1)
    assert (counts["failed_fragmented"], counts["failed_pool_short"]) == (1, 0)


def test_the_rounded_plan_keeps_the_lps_room_where_the_largest_share_overfills_it():
    # a: one 8-core node at 100 g/kWh, b: 500. j1 (6 cores, 1 h) and j2 (4 cores, 2 h), no
    # windows, both at 0. A core on a saves the same per hour for either job, and j2 saves it
    # for two hours for the same room in hour 0: the LP puts j2 whole on a and 2/3 of j1
    # (4 of its 6 cores' worth). 0.04 kW × 1.2 × 100 × 2 = 9.6 g; j1 2/3 × 7.2 + 1/3 × 37.5
    # = 17.3 g; 26.9 g. Largest share: both on a, where j1 (first in the trace) starts and j2
    # has no room (the per-job planner sends it to b: 7.2 + 0.04 × 1.25 × 500 × 2 = 57.2 g).
    # Rounded, surest first: j2 on a, then j1 finds no room there and takes b
    # (9.6 + 0.06 × 1.25 × 500 = 47.1 g).
    power = curves([100.0])
    jobs = [job("j1", 0, 1, cpu=6.0), job("j2", 0, 2, cpu=4.0)]
    arrays = JobArrays.of(jobs)
    bound = lower_bound(jobs, arrays, fleet(), power.window(curve_hours(arrays)),
                        rounded_plan=True)  # fmt: skip
    assert bound.carbon_t * 1e6 == pytest.approx(26.9)
    assert bound.plan is not None and bound.rounded_plan is not None
    np.testing.assert_array_equal(bound.plan.cluster, [0, 0])
    np.testing.assert_allclose(bound.plan.share, [2 / 3, 1.0])
    assert bound.plan.split_jobs == 1
    np.testing.assert_array_equal(bound.rounded_plan.cluster, [1, 0])
    np.testing.assert_allclose(bound.rounded_plan.start_s, [0.0, 0.0])
    plain = make_placer("lp-plan-replay", curves=power, lp_plan=bound.plan)
    run = replay(jobs, fleet(), plain, power)
    assert carbon_g(run, jobs, power) == pytest.approx(57.2)
    assert isinstance(plain, LpPlanReplay) and plain.diagnostics()["now_failed"] == 1
    rounded = make_placer("lp-plan-replay-rounded", curves=power, lp_plan=bound.rounded_plan)
    run = replay(jobs, fleet(), rounded, power)
    assert carbon_g(run, jobs, power) == pytest.approx(47.1)
    assert isinstance(rounded, LpPlanReplay) and rounded.diagnostics()["now_failed"] == 0
    assert rounded.name == "lp-plan-replay-rounded"
