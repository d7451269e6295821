"""Carbon accounting, confidence intervals and the LP/MILP lower bound, on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from computegrid.api.common import ComputeType, LatencySensitivity, Region
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import ClusterSnapshot, FleetState, JobRequest, NodeCapacity, PowerMix
from computegrid.sim.bound import lower_bound
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
    assert b.milp_carbon_t == pytest.approx(59.6e-6)
    assert b.slack_jobs == 0
    np.testing.assert_allclose(b.placement.sum(axis=1), 1.0)


def test_bound_uses_time_not_just_space():
    # The same two jobs one after the other both fit a: 2 × 9.6 = 19.2 g.
    b = bound_of([job("j1", 0, 1), job("j2", 1, 1)], nodes_a=1)
    assert b.carbon_t == pytest.approx(19.2e-6)


def test_bound_relaxation_splits_a_job_the_milp_cannot():
    # a has 8 cores; jobs of 6 and 4 cores overlap. LP: all of j1 (6/8 of a) and 1/2 of j2 on a
    # = 6·10 W… in g: j1 0.06·1.2·100 = 7.2, j2 on a 0.04·1.2·100 = 4.8, on b 0.04·1.25·500 = 25
    # LP: 7.2 + 0.5·4.8 + 0.5·25 = 22.1; MILP: 7.2 + 25 = 32.2 (j2 whole on b).
    b = bound_of([job("j1", 0, 1, cpu=6.0), job("j2", 0, 1, cpu=4.0)], nodes_a=1)
    assert b.carbon_t == pytest.approx(22.1e-6)
    assert b.milp_carbon_t == pytest.approx(32.2e-6)


def test_bound_reports_slack_when_capacity_cannot_hold_every_job_on_arrival():
    # Three 8-core jobs at once; a has 1 node, b has 2 (the helper): 3 fit. A fourth does not.
    jobs = [job(f"j{i}", 0, 1) for i in range(4)]
    b = bound_of(jobs, nodes_a=1)
    assert b.slack_jobs == 1
