"""Run-time profiles: a job without a window scored over the run such work makes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import cluster, job, state
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.api.common import ComputeType, LatencySensitivity, Region
from computegrid.scheduling import Decision, Scheduler
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.run_profile import KEEP_RUNS, MAX_HOURS, RunProfile, shape_of
from computegrid.scheduling.timeshift import (
    FleetForecast,
    TimedDecision,
    TimeScheduler,
    Window,
    expected_state,
)

H = HOUR_S
LOW, HIGH = LatencySensitivity.LOW, LatencySensitivity.HIGH


def learned(runs_h: list[float], request: object = None, **kwargs: int) -> RunProfile:
    profile = RunProfile(**kwargs)
    for hours in runs_h:
        profile.record(request or job(), hours * H)  # type: ignore[arg-type]
    return profile


def test_weights_are_the_share_of_each_hour_still_running() -> None:
    # Ten runs of 1.5 h and ten of 0.5 h: hour 0 is (10 × 1 + 10 × 0.5)/20 = 0.75 run,
    # hour 1 (10 × 0.5)/20 = 0.25; they sum to the mean run, 1 h.
    weights = learned([1.5] * 10 + [0.5] * 10).weights(job())
    assert weights is not None
    assert weights.tolist() == pytest.approx([0.75, 0.25])


def test_too_few_runs_give_no_profile_and_bad_runs_are_ignored() -> None:
    profile = learned([2.0] * 19)
    for bad in (0.0, -5.0, math.nan, math.inf):
        profile.record(job(), bad)
    assert profile.runs(job()) == 19
    assert profile.weights(job()) is None
    profile.record(job(), 2 * H)
    assert profile.weights(job()) == pytest.approx([1.0, 1.0])


def test_shapes_are_learned_apart_and_old_runs_give_way() -> None:
    training, inference = (
        job(gpu=8, kind=ComputeType.INTELLIGENT),
        job(gpu=1, kind=ComputeType.INTELLIGENT),
    )
    assert shape_of(training) != shape_of(inference)
    profile = learned([6.0] * 20, training, min_runs=20, keep=20)
    assert profile.weights(inference) is None
    for _ in range(20):  # the 6 h runs leave the window of the last 20
        profile.record(training, 1 * H)
    assert profile.weights(training) == pytest.approx([1.0])


def test_runs_told_out_of_order_keep_the_ones_that_ended_last() -> None:
    # A start's list of the hub comes in no particular order: 600 runs, the 500 that ended
    # last (ends 100..599) ran 2 h, the 100 that ended first ran 9 h; told shuffled.
    ends = list(range(600))
    np.random.default_rng(7).shuffle(ends)
    profile = RunProfile()
    for ended in ends:
        profile.record(job(), (2.0 if ended >= 100 else 9.0) * H, ended_s=1e9 + ended)
    assert profile.runs(job()) == KEEP_RUNS
    assert profile.weights(job()) == pytest.approx([1.0, 1.0])  # no 9 h run left
    # A run that ended before every run kept changes nothing; a later one takes its place.
    profile.record(job(), 9 * H, ended_s=1e9 + 50)
    assert profile.weights(job()) == pytest.approx([1.0, 1.0])
    profile.record(job(), 12 * H, ended_s=1e9 + 1000)
    weights = profile.weights(job())
    assert weights is not None and weights.sum() == pytest.approx((499 * 2 + 12) / 500)


def test_a_run_without_an_end_time_counts_as_the_latest() -> None:
    profile = RunProfile(min_runs=2, keep=2)
    profile.record(job(), 5 * H, ended_s=1e9)
    profile.record(job(), 1 * H)  # told as it ends (the simulator)
    profile.record(job(), 1 * H)  # the 5 h run ended first: it goes
    assert profile.weights(job()) == pytest.approx([1.0])


def test_recording_by_shape_and_by_request_agree() -> None:
    training = job(gpu=8, kind=ComputeType.INTELLIGENT)
    by_request, by_shape = RunProfile(), RunProfile()
    for i, hours in enumerate([0.5, 6.0, 3.2] * 7):
        by_request.record(training, hours * H, ended_s=1e9 + i)
        by_shape.record_shape(shape_of(training), hours * H, ended_s=1e9 + i)
    assert by_shape.runs(training) == by_request.runs(training) == 21
    assert by_shape.weights(training) == pytest.approx(by_request.weights(training))
    assert by_shape.describe(training) == by_request.describe(training)


@pytest.mark.parametrize(("runs_h", "said"), [(5 / 3600, "5 s"), (0.75, "45 min"), (5.8, "5.8 h")])
def test_a_profile_says_the_run_it_assumes(runs_h: float, said: str) -> None:
    assert learned([runs_h] * 20).describe(job()) == (
        f"power figures averaged over the run such work makes: {said} on average over the "
        "last 20 runs of its shape"
    )
    assert learned([runs_h] * 19).describe(job()) is None


def test_keep_below_min_runs_is_refused() -> None:
    with pytest.raises(ValueError, match="min_runs"):
        RunProfile(min_runs=30, keep=10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 80.0), min_size=20, max_size=60))
def test_weights_sum_to_the_mean_run_and_never_rise(runs_h: list[float]) -> None:
    weights = learned(runs_h).weights(job())
    assert weights is not None
    assert weights.sum() == pytest.approx(np.minimum(runs_h, MAX_HOURS).mean())
    assert ((weights >= 0) & (weights <= 1)).all()
    assert (np.diff(weights) <= 1e-12).all()


def test_expected_over_weighs_each_hour_of_the_run() -> None:
    carbon = np.array([[100.0, 400.0], [300.0, 400.0], [500.0, 400.0]])
    forecast = FleetForecast(0.0, carbon, carbon, np.zeros((3, 2)), np.full((3, 2), 0.5))
    # (0.75 × 100 + 0.25 × 300)/1 = 150 on the first cluster; a flat series stays flat.
    assert forecast.expected_over("carbon", 0.0, np.array([0.75, 0.25])).tolist() == [
        pytest.approx([150.0, 400.0])
    ]
    # Half an hour in, each run hour straddles two clock hours: 0.75 × 200 + 0.25 × 400.
    half = forecast.expected_over("carbon", 0.5 * H, np.array([0.75, 0.25]))
    assert half[0, 0] == pytest.approx(250.0)


# qingyang: a solar hour now (210 g/kWh), then 700; zhangjiakou: 477 all day.
SUNSET = [210.0] + [700.0] * 47
FLAT = [477.0] * 48


def sunset_fleet() -> tuple[object, FleetForecast]:
    s = state(
        cluster("qingyang", carbon=210, price=0.5),
        cluster("zhangjiakou", carbon=477, price=0.5, region=Region.EAST),
    )
    c = np.column_stack([SUNSET, FLAT])
    return s, FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), np.full(c.shape, 0.5))


@pytest.mark.parametrize(
    ("runs_h", "expected"),
    [
        (None, "qingyang"),  # no profile: the figures of now, the solar hour wins
        ([0.5] * 20, "qingyang"),  # such work ends inside the solar hour
        ([6.0] * 20, "zhangjiakou"),  # (210 + 5 × 700)/6 = 618 over the run, against 477
    ],
)
def test_a_job_without_a_window_is_scored_over_the_run_such_work_makes(
    runs_h: list[float] | None, expected: str
) -> None:
    s, forecast = sunset_fleet()
    profile = None if runs_h is None else learned(runs_h)
    timed = TimeScheduler(run_profile=profile).plan(job(), s, Window(0.0), forecast)  # type: ignore[arg-type]
    assert isinstance(timed, TimedDecision)
    assert timed.cluster == expected
    # The operator's path for such a job: the plain scheduler on the expected figures.
    view = expected_state(job(), s, forecast, 0.0, profile)  # type: ignore[arg-type]
    plain = Scheduler().schedule(job(), view)
    assert isinstance(plain, Decision)
    assert plain.cluster.name == expected
    # The state itself keeps the figures of now (and its cached scores).
    assert s.carbon.tolist() == [210.0, 477.0]  # type: ignore[attr-defined]
    again = Scheduler().schedule(job(), s)  # type: ignore[arg-type]
    assert isinstance(again, Decision) and again.cluster.name == "qingyang"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 900.0), min_size=30, max_size=30),
    st.integers(1, 12),
    st.floats(0.0, 5 * H),
)
def test_runs_of_one_length_weigh_as_that_run_does(
    series: list[float], hours: int, t0_s: float
) -> None:
    # Every run exactly ``hours`` long: the expected figure is the plain mean over that run.
    carbon = np.column_stack([series, series[::-1]])
    forecast = FleetForecast(0.0, carbon, carbon, np.zeros(carbon.shape), carbon / 1000)
    weights = learned([float(hours)] * 20).weights(job())
    assert weights is not None and len(weights) == hours
    expected = forecast.expected_over("carbon", t0_s, weights)
    plain = forecast.mean_over("carbon", np.array([t0_s]), hours * H)
    assert expected == pytest.approx(plain, rel=1e-9, abs=1e-9)
