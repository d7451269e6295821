"""The hourly power model of computegrid.fleet_data.power (power-profiles.md, "A simple model")."""

from __future__ import annotations

import numpy as np
import pytest

from computegrid.api.common import Region
from computegrid.fleet_data import load_national_fleet
from computegrid.fleet_data.power import (
    FOSSIL_FACTOR,
    HOURS,
    build_curves,
    contracted_green_share,
    fossil_share_curve,
    hour_calendar,
    tou_multipliers,
    wind_shape,
)

FLEET = load_national_fleet()
CURVES = build_curves(FLEET.clusters)


@pytest.mark.parametrize("cluster", FLEET.clusters, ids=lambda c: c.name)
def test_annual_mean_keeps_the_provincial_factor(cluster):
    # The model rescales the hourly fossil share so the year's mean is the MEE factor.
    i = CURVES.names.index(cluster.name)
    assert CURVES.carbon[:, i].mean() == pytest.approx(cluster.power.carbon_intensity, rel=1e-3)


@pytest.mark.parametrize("cluster", FLEET.clusters, ids=lambda c: c.name)
def test_flat_load_pays_the_data_price_on_average(cluster):
    i = CURVES.names.index(cluster.name)
    assert CURVES.price[:, i].mean() == pytest.approx(cluster.power.price_per_kwh, rel=1e-9)


@pytest.mark.parametrize(
    ("name", "green"),
    [
        ("inner-mongolia-horinger", 0.8457),  # clusters.horinger.reported... (read)
        ("ningxia-zhongwei", 0.5),  # clusters.zhongwei claim
        ("jingjinji-zhangjiakou", 0.33),  # clusters.zhangjiakou.reported
        ("chengdu-chongqing-tianfu", 0.0),  # a provincial share is not a contract
        ("yangtze-delta-wujiang", 0.0),  # estimated from the factor
    ],
)
def test_market_based_is_location_net_of_the_contracted_share(name, green):
    i = CURVES.names.index(name)
    assert contracted_green_share(FLEET.by_name(name)) == pytest.approx(green)
    np.testing.assert_allclose(CURVES.carbon_market[:, i], (1 - green) * CURVES.carbon[:, i])


def test_flat_clean_supply_gives_a_flat_curve():
    # clean ≡ 1 (mean 1): α solves clip(1 − α, F_min, 1) = 0.6 → α = 0.4, every hour 0.6.
    curve = fossil_share_curve(0.6, np.ones(100))
    np.testing.assert_allclose(curve, 0.6, atol=1e-9)


def test_fossil_share_never_below_the_floor_and_keeps_the_mean():
    clean = np.array([0.0, 0.5, 1.5, 2.0])  # mean 1
    curve = fossil_share_curve(0.4, clean)
    assert curve.min() >= 0.2 - 1e-12  # floor min(0.25, 0.4/2) = 0.2
    assert curve.mean() == pytest.approx(0.4, abs=1e-9)


@pytest.mark.parametrize(("hour", "value"), [(4, 1.2), (16, 0.8), (10, 1.0)])
def test_wind_shape_peaks_before_dawn(hour, value):
    # 1 + 0.2·cos(2π(h − 4)/24): h=10 → cos(π/2) = 0 → 1.0
    assert float(wind_shape(np.array([hour]))[0]) == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(
    ("month", "hour", "multiplier"),
    [
        (4, 3, 0.38),  # valley 0-8
        (4, 10, 1.7),  # peak 10-12
        (4, 13, 1.0),  # flat 12-14
        (7, 11, 1.7 * 1.25),  # critical peak Jul-Sep 11-12
        (10, 15, 1.7),  # Oct 15-17 is peak, not critical
    ],
)
def test_guangdong_time_of_use(month, hour, multiplier):
    m = tou_multipliers("Guangdong", Region.EAST, np.array([month]), np.array([hour]))
    assert float(m[0]) == pytest.approx(multiplier)


@pytest.mark.parametrize(
    ("month", "hour", "multiplier"),
    [(4, 12, 0.4), (7, 11, 1.6), (7, 2, 0.4), (7, 13, 1.0)],
)
def test_west_template_has_a_spring_midday_valley(month, hour, multiplier):
    # Gansu: template peak 10-12 & 16-21 at 1.6, valley 23-7 at 0.4, Mar-May/Sep-Oct 11-15 0.4
    m = tou_multipliers("Gansu", Region.WEST, np.array([month]), np.array([hour]))
    assert float(m[0]) == pytest.approx(multiplier)


def test_drought_raises_sichuan_in_july_and_august_only():
    dry = build_curves(FLEET.clusters, scenario="sichuan-drought-2022")
    month, _ = hour_calendar()
    i = CURVES.names.index("chengdu-chongqing-tianfu")
    summer = np.isin(month, (7, 8))
    assert dry.carbon[summer, i].mean() > CURVES.carbon[summer, i].mean() * 1.2
    np.testing.assert_allclose(dry.carbon[~summer, i], CURVES.carbon[~summer, i])
    j = CURVES.names.index("gansu-qingyang")
    np.testing.assert_allclose(dry.carbon[:, j], CURVES.carbon[:, j])


def test_curves_cover_a_year_and_stay_physical():
    assert CURVES.carbon.shape == (HOURS, len(FLEET.clusters))
    assert (CURVES.carbon <= FOSSIL_FACTOR + 1e-9).all() and (CURVES.carbon > 0).all()
    assert ((CURVES.renewable >= 0) & (CURVES.renewable <= 1)).all()


def test_replay_hour_zero_is_the_start_date():
    # 2023-04-03 00:00 is hour 31+28+31+2 = 92 days × 24 = 2208 of the year.
    assert CURVES.start_hour == 2208
    carbon, _, _ = CURVES.at(0)
    np.testing.assert_array_equal(carbon, CURVES.carbon[2208])
    np.testing.assert_array_equal(CURVES.at(HOURS)[0], CURVES.carbon[2208])  # wraps the year
