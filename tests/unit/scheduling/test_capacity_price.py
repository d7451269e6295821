"""Prices for room (cluster × pool × resource × hour) and the time-aware planner that pays them."""

from __future__ import annotations

import numpy as np
import pytest
from builders import cluster, job, state
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.api.common import ComputeType, LatencySensitivity, Region
from computegrid.scheduling.capacity_price import (
    RESOURCES,
    CapacityPrices,
    CongestionPrice,
    demand,
    learn_prices,
)
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.state import TYPE_CODES
from computegrid.scheduling.timeshift import FleetForecast, TimedDecision, TimeScheduler, Window

LOW, MEDIUM, HIGH = LatencySensitivity.LOW, LatencySensitivity.MEDIUM, LatencySensitivity.HIGH
H = HOUR_S
GENERAL = TYPE_CODES[ComputeType.GENERAL]
CPU = RESOURCES.index("cpu")
VALLEY = [477.0] * 3 + [210.0] * 3 + [477.0] * 42  # qingyang: a solar valley at hours 3-5
FLAT_700 = [700.0] * 48  # zhangjiakou


def two_clusters():  # type: ignore[no-untyped-def]
    s = state(
        cluster("qingyang", carbon=477, price=0.5),
        cluster("zhangjiakou", carbon=700, price=0.5, region=Region.EAST),
    )
    c = np.column_stack([VALLEY, FLAT_700])
    return s, FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), np.full(c.shape, 0.5))


def cpu_prices(hours: int, by_hour: dict[tuple[int, int], float], **kw: object) -> CapacityPrices:
    """g per cpu·hour on (hour, cluster) for general-type pools; everything else free."""
    table = np.zeros((hours, 2, len(TYPE_CODES), len(RESOURCES)))
    for (hour, c), g in by_hour.items():
        table[hour, c, GENERAL, CPU] = g
    return CapacityPrices(0.0, table, **kw)  # type: ignore[arg-type]


def test_demand_is_all_pods_in_resource_order() -> None:
    j = job(cpu=4, memory_gi=8, pods=3)
    assert demand(j).tolist() == [12.0, 3 * 8 * 2**30, 0.0]


def test_mean_rate_averages_the_run_pro_rata() -> None:
    # 4 cpu; cluster 0 at 1, 2, 3 g per cpu·h in hours 0-2: a run from 0.5 h to 2.5 h pays
    # 4 × (0.5·1 + 2 + 0.5·3) = 16 g over 2 h: 8 g/h. Cluster 1 free. After the table: 0.
    s, _ = two_clusters()
    p = cpu_prices(3, {(0, 0): 1.0, (1, 0): 2.0, (2, 0): 3.0})
    rate = p.mean_rate(job(cpu=4), s, np.array([0.5 * H, 5 * H]), 2 * H)
    assert rate[0].tolist() == pytest.approx([8.0, 0.0])
    assert rate[1].tolist() == [0.0, 0.0]


def test_a_daily_table_repeats() -> None:
    s, _ = two_clusters()
    p = cpu_prices(24, {(h, 0): float(h) for h in range(24)}, period_h=24)
    starts = np.array([3 * H, 27 * H, 51 * H, -21 * H])
    got = p.mean_rate(job(cpu=1), s, starts, 1 * H)[:, 0]
    assert got.tolist() == pytest.approx([3.0, 3.0, 3.0, 3.0])


def test_surcharge_is_the_rate_per_facility_kwh() -> None:
    # 4 cpu + 8 GiB: 43 W IT; qingyang (west) PUE 1.2: 51.6 W. 3.87 g per cpu·h × 4 = 15.48 g/h
    # → 15.48 / 0.0516 = 300 g/kWh.
    s, _ = two_clusters()
    p = cpu_prices(48, {(h, 0): 3.87 for h in range(48)})
    got = p.surcharge_g_per_kwh(job(cpu=4), s, np.array([0.0]), H)
    assert got[0].tolist() == pytest.approx([300.0, 0.0])
    high_free = CapacityPrices(0.0, p.g_per_unit_h, applies_to=frozenset({LOW}))
    assert not high_free.surcharge_g_per_kwh(job(sensitivity=HIGH), s, np.array([0.0]), H).any()


@pytest.mark.parametrize(
    ("table", "kw", "message"),
    [
        (np.zeros((2, 2, 3)), {}, "shape"),
        (-np.ones((2, 2, len(TYPE_CODES), len(RESOURCES))), {}, "≥ 0"),
        (np.full((2, 2, len(TYPE_CODES), len(RESOURCES)), np.nan), {}, "finite"),
        (np.zeros((2, 2, len(TYPE_CODES), len(RESOURCES))), {"period_h": 24}, "period_h"),
        (np.zeros((2, 2, len(TYPE_CODES), len(RESOURCES))), {"clusters": ("a",)}, "clusters"),
    ],
)
def test_bad_tables_are_refused(table: np.ndarray, kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapacityPrices(0.0, table, **kw)  # type: ignore[arg-type]


def test_other_clusters_are_refused() -> None:
    s, _ = two_clusters()
    p = CapacityPrices(0.0, np.zeros((1, 2, len(TYPE_CODES), len(RESOURCES))),
                       clusters=("zhangjiakou", "qingyang"))  # fmt: skip
    with pytest.raises(ValueError, match="different clusters"):
        p.mean_rate(job(), s, np.array([0.0]), H)


def test_a_priced_green_cluster_loses_a_flexible_job() -> None:
    # A low job without a window, from Beijing: qingyang scores (5·52.3 + 50)/6 = 51.92,
    # zhangjiakou (5·30 + 50)/6 = 33.33. qingyang's room at 3.87 g per cpu·h is +300 g/kWh
    # (above): (5·100(1 − 0.777) + 50)/6 = 26.92 < 33.33, so it goes to zhangjiakou. At half
    # that price (+150): (5·37.3 + 50)/6 = 39.42, still qingyang.
    s, f = two_clusters()
    j = job("beijing")
    plain = TimeScheduler().plan(j, s, Window(now_s=0.0), f)
    dear = TimeScheduler(prices=cpu_prices(48, {(h, 0): 3.87 for h in range(48)}))
    half = TimeScheduler(prices=cpu_prices(48, {(h, 0): 3.87 / 2 for h in range(48)}))
    priced, halved = dear.plan(j, s, Window(now_s=0.0), f), half.plan(j, s, Window(now_s=0.0), f)
    assert isinstance(plain, TimedDecision) and plain.cluster == "qingyang"
    assert isinstance(priced, TimedDecision) and isinstance(halved, TimedDecision)
    assert (priced.cluster, priced.score) == ("zhangjiakou", pytest.approx(200 / 6))
    assert (halved.cluster, halved.score) == ("qingyang", pytest.approx((5 * 37.3 + 50) / 6))


def test_a_priced_valley_moves_a_deferred_job_to_a_free_hour() -> None:
    # 2 h run, deadline 10 h. Unpriced it starts at 3 h (valley, 210). With qingyang's room at
    # +300 g/kWh in hours 3 and 4: start 3 h → 210 + 300 = 510; 4 h → 210 + 150 = 360; 5 h →
    # (210 + 477)/2 = 343.5, unpriced: the best. (Zhangjiakou: 700.)
    s, f = two_clusters()
    window = Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H)
    planner = TimeScheduler(prices=cpu_prices(48, {(3, 0): 3.87, (4, 0): 3.87}))
    d = planner.plan(job("beijing"), s, window, f)
    assert isinstance(d, TimedDecision)
    assert (d.cluster, d.start_s) == ("qingyang", 5 * H)
    assert d.carbon[5, 0] == pytest.approx(343.5)  # the grid's, not the priced, intensity


def test_learn_turns_bucket_duals_into_hourly_grams() -> None:
    # A 2 h bucket priced 4 kg per unit: 2,000 g per unit·hour in each of its 2 hours;
    # negative duals (solver noise) count as 0; two traces are averaged.
    a = np.zeros((2, 2, len(TYPE_CODES), len(RESOURCES)))
    a[0, 1, GENERAL, CPU] = 4.0
    a[1, 0, GENERAL, CPU] = -1.0
    b = np.zeros_like(a)
    b[0, 1, GENERAL, CPU] = 2.0
    p = learn_prices([a, b], bucket_hours=2.0)
    assert p.hours == 4 and p.period_h is None
    assert p.g_per_unit_h[:, 1, GENERAL, CPU].tolist() == [1500.0, 1500.0, 0.0, 0.0]
    assert p.g_per_unit_h[:, 0, GENERAL, CPU].tolist() == [0.0] * 4


def test_learn_folds_onto_the_hour_of_day() -> None:
    # 72 hourly buckets priced at their hour index (kg). Folding hours 24-71 by hour of day:
    # hour p averages p + 24 and p + 48 → (p + 36) × 1000 g.
    duals = np.zeros((72, 1, len(TYPE_CODES), len(RESOURCES)))
    duals[:, 0, GENERAL, CPU] = np.arange(72)
    p = learn_prices([duals], period_h=24, from_h=24, to_h=72)
    assert p.period_h == 24
    assert p.g_per_unit_h[:, 0, GENERAL, CPU].tolist() == pytest.approx(
        [(h + 36) * 1000.0 for h in range(24)]
    )
    with pytest.raises(ValueError, match="shorter than one period"):
        learn_prices([duals], period_h=24, from_h=60, to_h=72)
    with pytest.raises(ValueError, match="whole number"):
        learn_prices([duals], bucket_hours=1.5)


# -- properties ------------------------------------------------------------------------------

tables = st.lists(st.floats(0, 50), min_size=24, max_size=24)


@settings(max_examples=100, deadline=None)
@given(
    hourly=tables,
    start_h=st.floats(-30, 60),
    duration_h=st.floats(0.05, 30),
    factor=st.floats(0, 5),
)
def test_the_mean_rate_lies_within_the_hours_it_covers_and_scales(
    hourly: list[float], start_h: float, duration_h: float, factor: float
) -> None:
    s, _ = two_clusters()
    p = cpu_prices(24, {(h, 0): g for h, g in enumerate(hourly)}, period_h=24)
    j = job(cpu=2)
    starts = np.array([start_h * H])
    rate = float(p.mean_rate(j, s, starts, duration_h * H)[0, 0])
    hours = np.arange(np.floor(start_h), np.ceil(start_h + duration_h)).astype(int) % 24
    covered = 2 * np.array(hourly)[hours]
    assert covered.min() - 1e-6 <= rate <= covered.max() + 1e-6
    again = float(p.mean_rate(j, s, starts + 24 * H, duration_h * H)[0, 0])
    assert again == pytest.approx(rate, rel=1e-6, abs=1e-6)  # a day later, the same
    scaled = float(p.scaled(factor).mean_rate(j, s, starts, duration_h * H)[0, 0])
    assert scaled == pytest.approx(factor * rate, rel=1e-6, abs=1e-6)


series = st.lists(st.floats(50, 900), min_size=48, max_size=48)


@settings(max_examples=100, deadline=None)
@given(
    carbon=st.tuples(series, series),
    prices=st.lists(st.floats(0, 20), min_size=48, max_size=48),
    duration_h=st.floats(0.25, 12),
    slack_h=st.floats(-3, 30),
    sensitivity=st.sampled_from(list(LatencySensitivity)),
)
def test_priced_plans_keep_the_window_and_the_budget_and_free_prices_change_nothing(
    carbon: tuple[list[float], list[float]],
    prices: list[float],
    duration_h: float,
    slack_h: float,
    sensitivity: LatencySensitivity,
) -> None:
    s, _ = two_clusters()
    c = np.column_stack(carbon)
    f = FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), np.full(c.shape, 0.5))
    window = Window(0.0, duration_h * H, (duration_h + slack_h) * H)
    if sensitivity is HIGH:
        window = Window(0.0, duration_h * H)
    j = job("beijing", sensitivity=sensitivity)
    plain = TimeScheduler().plan(j, s, window, f)
    free = TimeScheduler(prices=cpu_prices(48, {})).plan(j, s, window, f)
    priced = TimeScheduler(prices=cpu_prices(48, {(h, 0): g for h, g in enumerate(prices)}))
    d = priced.plan(j, s, window, f)
    assert isinstance(plain, TimedDecision) and isinstance(free, TimedDecision)
    assert (free.index, free.start_s, free.score) == (plain.index, plain.start_s, plain.score)
    assert isinstance(d, TimedDecision)
    assert d.start_s >= 0.0
    if window.latest_start_s is not None and not window.late:
        assert d.start_s <= window.latest_start_s + 1e-6
    budget = {HIGH: 5.0, MEDIUM: 20.0, LOW: float("inf")}[sensitivity]
    assert s.latency_from("beijing")[d.index] <= budget
    # Pricing only ever charges: the priced score is at most the unpriced one.
    assert d.score <= plain.score + 1e-9


# -- a price rising with the pool's fill ---------------------------------------------------


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        (0.0, 0.0),
        (0.5, 200 * (np.e**2 - 1) / (np.e**4 - 1)),  # 23.84 g/kWh
        (0.9, 200 * (np.e**3.6 - 1) / (np.e**4 - 1)),  # 133.0
        (1.0, 200.0),
        (1.7, 200.0),  # over full (promises beyond the room): the full price
        (-0.2, 0.0),
    ],
)
def test_the_congestion_surcharge_rises_exponentially_with_fill(
    fill: float, expected: float
) -> None:
    got = CongestionPrice(200.0, 4.0).surcharge_g_per_kwh(np.array([fill]))
    assert got[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"full_g_per_kwh": -1.0}, "full_g_per_kwh"), ({"steepness": 0.0}, "steepness"),
     ({"full_g_per_kwh": np.inf}, "full_g_per_kwh")],
)  # fmt: skip
def test_bad_congestion_prices_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CongestionPrice(**kw)


def nearly_full_qingyang():  # type: ignore[no-untyped-def]
    # qingyang's one 64-cpu node has 56 in use: a 4-cpu job would fill its pool to 60/64 =
    # 0.9375 (cpu; memory 8/256); zhangjiakou's to 4/64 = 0.0625.
    s = state(
        cluster("qingyang", carbon=477, price=0.5, used_cpu=56),
        cluster("zhangjiakou", carbon=700, price=0.5, region=Region.EAST),
    )
    c = np.column_stack([[477.0] * 48, FLAT_700])
    return s, FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), np.full(c.shape, 0.5))


def test_a_nearly_full_green_pool_loses_a_job_at_a_dearer_congestion_price() -> None:
    # Unpriced the low job goes to qingyang (477 g/kWh against 700). At full = 400 g/kWh,
    # k = 4: qingyang +400·(e^3.75 − 1)/(e^4 − 1) = +309.9 → 786.9 g/kWh effective, worse
    # than zhangjiakou's 700 + 2.1; at full = 200 (+155 → 632 g/kWh) qingyang still wins.
    s, f = nearly_full_qingyang()
    j = job("beijing")
    now = Window(now_s=0.0)
    plain = TimeScheduler().plan(j, s, now, f)
    dear = TimeScheduler(congestion=CongestionPrice(400.0)).plan(j, s, now, f)
    mild = TimeScheduler(congestion=CongestionPrice(200.0)).plan(j, s, now, f)
    free = TimeScheduler(congestion=CongestionPrice(0.0)).plan(j, s, now, f)
    assert isinstance(plain, TimedDecision) and plain.cluster == "qingyang"
    assert isinstance(dear, TimedDecision) and dear.cluster == "zhangjiakou"
    assert isinstance(mild, TimedDecision) and mild.cluster == "qingyang"
    assert isinstance(free, TimedDecision) and free.score == pytest.approx(plain.score)
    # charging only windowed jobs leaves this one (no window) where the plain policy puts it
    only = TimeScheduler(congestion=CongestionPrice(400.0, windowed_only=True)).plan(j, s, now, f)
    assert isinstance(only, TimedDecision) and only.cluster == "qingyang"
