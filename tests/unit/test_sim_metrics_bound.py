"""Carbon accounting, confidence intervals and the LP/MILP lower bound, on hand-worked cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from computegrid.api.common import GPU, ComputeType, LatencySensitivity, Region
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import ClusterSnapshot, FleetState, JobRequest, NodeCapacity, PowerMix
from computegrid.sim.bound import INTEGRAL, lower_bound
from computegrid.sim.bound_milp import rounded
from computegrid.sim.bound_model import Block
from computegrid.sim.metrics import JobArrays, captured_savings, hourly_integral, mean_ci
from computegrid.sim.trace import SimJob


@pytest.mark.parametrize(
    ("t0_h", "t1_h", "expected"),
    [
        (0.5, 2.25, 32.5),  # 0.5·10 + 20 + 0.25·30
        (0.0, 1.0, 10.0),
        (1.0, 1.0, 0.0),
        (2.0, 3.0, 30.0),
        (0.25, 0.75, 5.0),  # half an hour at 10
    ],
)
def test_hourly_integral(t0_h, t1_h, expected):
    curve = np.array([10.0, 20.0, 30.0, 40.0])
    got = hourly_integral(curve, np.array([t0_h * 3600]), np.array([t1_h * 3600]))
    assert float(got[0]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "mean", "half"),
    [
        ((1.0, 2.0, 3.0), 2.0, 2.484),  # s = 1, t(0.975, 2) = 4.303, 4.303/√3 = 2.484
        ((5.0, 5.0, 5.0, 5.0, 5.0), 5.0, 0.0),
        ((4.0,), 4.0, 0.0),
    ],
)
def test_mean_ci(values, mean, half):
    m, h = mean_ci(values)
    assert m == pytest.approx(mean)
    assert h == pytest.approx(half, abs=1e-3)


@pytest.mark.parametrize(
    ("nearest", "policy", "bound", "captured"),
    [(100, 80, 70, 20 / 30), (100, 70, 70, 1.0), (100, 100, 70, 0.0), (100, 110, 70, -1 / 3)],
)
def test_captured_savings(nearest, policy, bound, captured):
    assert captured_savings(nearest, policy, bound) == pytest.approx(captured)


def cluster(name: str, region: Region, nodes: int) -> ClusterSnapshot:
    return ClusterSnapshot(
        name=name,
        hub=name,
        region=region,
        location="chengdu",
        power=PowerMix(0.5, 300.0, 0.5),
        nodes=tuple(
            NodeCapacity(f"{name}-{i}", {"cpu": 8.0, "memory": 64.0 * 2**30, "pods": 110.0})
            for i in range(nodes)
        ),
    )


def job(name: str, arrival_h: float, hours: float, cpu: float = 8.0) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": cpu}, 1, ComputeType.GENERAL,
                         LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, arrival_h * 3600, hours * 3600, "test")


def window(hours: int) -> dict[str, np.ndarray]:
    # cluster a (west, PUE 1.2) at 100 g/kWh, b (east, PUE 1.25) at 500 g/kWh
    carbon = np.tile([100.0, 500.0], (hours, 1))
    return {"carbon": carbon, "carbon_market": carbon, "price": carbon * 0, "renewable": carbon}


def bound_of(jobs, nodes_a: int, **kw):
    state = FleetState([cluster("a", Region.WEST, nodes_a), cluster("b", Region.EAST, 2)],
                       load_latency_model())  # fmt: skip
    return lower_bound(jobs, JobArrays.of(jobs), state, window(10), **kw)


def test_bound_fills_the_green_cluster_then_the_other():
    # Each job: 8 cores × 10 W = 80 W for 1 h. On a: 0.08 kW × 1.2 × 100 g = 9.6 g; on b:
    # 0.08 × 1.25 × 500 = 50 g. a holds one such job at a time: 9.6 + 50 = 59.6 g.
    jobs = [job("j1", 0, 1), job("j2", 0, 1)]
    b = bound_of(jobs, nodes_a=1)
    assert b.carbon_t == pytest.approx(59.6e-6)
    assert b.slack_jobs == 0
    assert b.method == "lp" and b.mixed is None
    np.testing.assert_allclose(b.placement.sum(axis=1), 1.0)
    whole = bound_of(jobs, nodes_a=1, integral="all")  # the LP is integral here already
    assert whole.carbon_t == pytest.approx(59.6e-6)
    assert whole.mixed is not None and whole.mixed.gap == pytest.approx(0.0, abs=1e-9)


def test_bound_uses_time_not_just_space():
    # The same two jobs one after the other both fit a: 2 × 9.6 = 19.2 g.
    b = bound_of([job("j1", 0, 1), job("j2", 1, 1)], nodes_a=1)
    assert b.carbon_t == pytest.approx(19.2e-6)


def test_bound_relaxation_splits_a_job_the_milp_cannot():
    # a has 8 cores; jobs of 6 and 4 cores overlap. LP: all of j1 (6/8 of a) and 1/2 of j2 on a
    # = 6·10 W… in g: j1 0.06·1.2·100 = 7.2, j2 on a 0.04·1.2·100 = 4.8, on b 0.04·1.25·500 = 25
    # LP: 7.2 + 0.5·4.8 + 0.5·25 = 22.1; MILP: 7.2 + 25 = 32.2 (j2 whole on b).
    jobs = [job("j1", 0, 1, cpu=6.0), job("j2", 0, 1, cpu=4.0)]
    b = bound_of(jobs, nodes_a=1)
    assert b.carbon_t == pytest.approx(22.1e-6)
    whole = bound_of(jobs, nodes_a=1, integral="all")
    assert whole.carbon_t == pytest.approx(32.2e-6)
    assert whole.lp_carbon_t == pytest.approx(22.1e-6)
    assert whole.method == "milp-all" and whole.mixed is not None
    assert whole.mixed.dual_bound_t == pytest.approx(32.2e-6)
    assert whole.mixed.incumbent_t == pytest.approx(32.2e-6)
    # no job asks for a GPU: "gpu" leaves the LP as it is
    gpu = bound_of(jobs, nodes_a=1, integral="gpu")
    assert gpu.carbon_t == pytest.approx(22.1e-6)
    assert gpu.mixed is not None and gpu.mixed.integral_jobs == 0


def test_capacity_at_instants_tightens_the_hourly_averages():
    # a holds 8 cores (100 g/kWh), b 16 (500 g/kWh); j1 runs 0:30-1:30, j2 1:00-2:00, 8 cores
    # each: 9.6 g on a, 50 g on b. Averaged per hour, a's 1:00 bucket holds half of j1 and
    # x2 of j2: 4 + 8·x2 ≤ 8, so the LP puts j1 and half of j2 on a:
    #   9.6 + 0.5 · 9.6 + 0.5 · 50 = 39.4 g.
    # At 1:00 both run: 8·x1 + 8·x2 ≤ 8, one of them on b: 9.6 + 50 = 59.6 g.
    jobs = [job("j1", 0.5, 1), job("j2", 1.0, 1)]
    hourly = bound_of(jobs, nodes_a=1)
    assert hourly.carbon_t == pytest.approx(39.4e-6)
    assert hourly.instants is None and hourly.method == "lp"
    tight = bound_of(jobs, nodes_a=1, instant_rounds=2)
    assert tight.carbon_t == pytest.approx(59.6e-6)
    assert tight.lp_carbon_t == pytest.approx(39.4e-6)
    assert tight.method == "lp+instants"
    ins = tight.instants
    assert ins is not None
    # one row (a's cores at 1:00), one optimal re-solve, nothing overfilled after it
    assert (ins.rows, ins.rounds, ins.violated_left, ins.slack_jobs) == (1, 1, 0, 0)
    assert tight.proved
    # the plan lp-plan-replay follows is the tightened optimum's: one job whole on each
    # cluster, where the LP's shares a with half of j2
    assert hourly.plan is not None and tight.plan is not None
    assert hourly.plan.split_jobs == 1 and tight.plan.split_jobs == 0
    assert sorted(tight.plan.cluster.tolist()) == [0, 1]


def test_capacity_at_instants_changes_nothing_where_the_averages_already_hold():
    # One after the other on the hour (test above): no instant is overfilled, no row added.
    b = bound_of([job("j1", 0, 1), job("j2", 1, 1)], nodes_a=1, instant_rounds=3)
    assert b.carbon_t == pytest.approx(19.2e-6)
    assert b.instants is not None and (b.instants.rows, b.instants.rounds) == (0, 0)


def gpu_node(name: str) -> NodeCapacity:
    return NodeCapacity(name, {"cpu": 64.0, GPU: 8.0, "pods": 110.0}, {},
                        ComputeType.INTELLIGENT)  # fmt: skip


def gpu_job(name: str, gpus: float) -> SimJob:
    request = JobRequest(name, "chengdu", {"cpu": 8.0, GPU: gpus}, 1, ComputeType.INTELLIGENT,
                         LatencySensitivity.LOW)  # fmt: skip
    return SimJob(request, 0.0, 3600.0, "test")


def test_whole_gpu_jobs_cannot_share_the_small_green_pool():
    # a (west, PUE 1.2, 100 g/kWh): one general node of 8 cores and one GPU node of 8 GPUs;
    # b (east, PUE 1.25, 500 g/kWh): two of each. Two GPU jobs of 1 pod × (8 cores, 6 GPUs)
    # for 1 h: 8 × 10 W + 6 × 400 W = 2.48 kW; on a 2.48 × 1.2 × 100 = 297.6 g, on b
    # 2.48 × 1.25 × 500 = 1550 g. a's 8 GPUs hold one whole and 2/6 of the other:
    #   LP:    297.6 + 1/3 · 297.6 + 2/3 · 1550 = 1430.1333 g
    #   whole: 297.6 + 1550                      = 1847.6 g
    # Beside them the general jobs of 6 and 4 cores (above): 22.1 g split, 32.2 g whole. The
    # general pool is its own block: "gpu" keeps its LP value, "all" places it whole too.
    a = cluster("a", Region.WEST, 1)
    b = cluster("b", Region.EAST, 2)
    a = dataclasses.replace(a, nodes=(*a.nodes, gpu_node("a-gpu")))
    b = dataclasses.replace(b, nodes=(*b.nodes, gpu_node("b-gpu-0"), gpu_node("b-gpu-1")))
    state = FleetState([a, b], load_latency_model())
    jobs = [gpu_job("t1", 6.0), gpu_job("t2", 6.0), job("j1", 0, 1, cpu=6.0),
            job("j2", 0, 1, cpu=4.0)]  # fmt: skip
    arrays = JobArrays.of(jobs)
    got = {i: lower_bound(jobs, arrays, state, window(10), integral=i) for i in INTEGRAL}
    lp = (1430.1333 + 22.1) * 1e-6
    assert got["none"].carbon_t == pytest.approx(lp)
    assert got["gpu"].lp_carbon_t == pytest.approx(lp)
    assert got["gpu"].carbon_t == pytest.approx((1847.6 + 22.1) * 1e-6)
    assert got["all"].carbon_t == pytest.approx((1847.6 + 32.2) * 1e-6)
    mixed = got["gpu"].mixed
    assert mixed is not None
    assert (mixed.integral_jobs, mixed.block_jobs) == (2, 2)  # the GPU block only
    assert mixed.dual_bound_t == pytest.approx(mixed.incumbent_t)  # solved: gap 0
    assert got["gpu"].proved


def test_an_unknown_integral_choice_is_refused():
    with pytest.raises(ValueError, match="integral: 'some'"):
        bound_of([job("j1", 0, 1)], nodes_a=1, integral="some")


def test_bound_reports_slack_when_capacity_cannot_hold_every_job_on_arrival():
    # Three 8-core jobs at once; a has 1 node, b has 2 (the helper): 3 fit. A fourth does not.
    jobs = [job(f"j{i}", 0, 1) for i in range(4)]
    b = bound_of(jobs, nodes_a=1)
    assert b.slack_jobs == 1


def test_rounding_keeps_the_surest_job_and_moves_the_split_one():
    # One capacity row (pool a, 8 GPUs); columns: j0 on a, j0 on b, j1 on a, j1 on b, then
    # the slacks. LP: j0 whole on a, j1 1/3 on a and 2/3 on b. Rounded: j0 (share 1) first
    # keeps a; j1's largest share is b, which has no row: 1 + 5 = 6.
    block = Block(
        jobs=np.array([0, 1]),
        columns=np.arange(6),
        a_ub=sparse.csr_matrix([[6.0, 0.0, 6.0, 0.0, 0.0, 0.0]]),
        b_ub=np.array([8.0]),
        a_eq=sparse.csr_matrix([[1.0, 1, 0, 0, 1, 0], [0.0, 0, 1, 1, 0, 1]]),
        objective=np.array([1.0, 5.0, 1.0, 5.0, 100.0, 100.0]),
    )
    x_lp = np.array([1.0, 0.0, 1 / 3, 2 / 3, 0.0, 0.0])
    binary = np.array([True, True, True, True, False, False])
    owner = np.array([0, 0, 1, 1, 0, 1])
    assert rounded(block, x_lp, binary, owner) == pytest.approx(6.0)
    # j1 may go on a only (its b column gone: the LP left 2/3 of it in slack): j0 holds a,
    # 6 + 6 > 8, so rounding finds no whole-job point.
    no_b = Block(
        jobs=block.jobs,
        columns=np.arange(4),
        a_ub=sparse.csr_matrix([[6.0, 6.0, 0.0, 0.0]]),
        b_ub=np.array([8.0]),
        a_eq=sparse.csr_matrix([[1.0, 0, 1, 0], [0.0, 1, 0, 1]]),
        objective=np.array([1.0, 1.0, 100.0, 100.0]),
    )
    assert rounded(no_b, np.array([1.0, 1 / 3, 0.0, 2 / 3]),
                   np.array([True, True, False, False]), np.array([0, 1, 0, 1])) is None  # fmt: skip
