"""Forecasts: the type, when one is trusted, the Builtin model and the Carbon Aware SDK format."""

from __future__ import annotations

import base64
import datetime as dt
import json

import numpy as np
import pytest

from computegrid.api.common import Region
from computegrid.fleet_data import load_national_fleet
from computegrid.fleet_data.carbon_aware import (
    parse_carbon_aware_configmap,
    parse_go_time,
)
from computegrid.fleet_data.power import build_curves, builtin_forecast, contracted_green_share
from computegrid.scheduling.forecast import (
    Forecast,
    ForecastError,
    effective_forecast,
    judge_forecast,
)
from computegrid.scheduling.snapshot import PowerMix

FLAT = PowerMix(renewable_share=0.3, carbon_intensity=500.0, price_per_kwh=0.6)
H = 3600.0


def series(values: list[float], start_s: float = 0.0, **kw: object) -> Forecast:
    a = np.array(values, dtype=float)
    return Forecast(start_s, a, a.copy(), np.zeros(len(a)), np.full(len(a), 0.5), **kw)  # type: ignore[arg-type]


def test_mean_over_is_the_exact_step_integral() -> None:
    f = series([10, 20, 30])
    # From 0.5 h for 1.5 h: 0.5 h·10 + 1 h·20 = 25 value-hours / 1.5 h = 16.667.
    assert f.mean_over("carbon", 0.5 * H, 1.5 * H)[0] == pytest.approx(25 / 1.5)
    # Vectorised over starts: hour 1 alone is 20, hour 2 alone is 30.
    assert f.mean_over("carbon", np.array([1 * H, 2 * H]), H).tolist() == pytest.approx([20, 30])


def test_mean_over_past_the_end_uses_the_forecasts_mean() -> None:
    f = series([10, 20, 30])  # mean 20
    # From 2 h for 2 h: 1 h at 30, then 1 h beyond the span at the mean 20 → 25.
    assert f.mean_over("carbon", 2 * H, 2 * H)[0] == pytest.approx(25.0)


def test_bad_series_are_refused_naming_the_field() -> None:
    with pytest.raises(ForecastError, match="same, non-zero"):
        Forecast(0, np.ones(3), np.ones(2), np.zeros(3), np.ones(3))
    with pytest.raises(ForecastError, match=r"forecast\.renewable"):
        Forecast(0, np.ones(3), np.ones(3), np.full(3, 1.5), np.ones(3))
    with pytest.raises(ForecastError, match=r"forecast\.carbon"):
        Forecast(0, np.array([1.0, np.nan]), np.ones(2), np.zeros(2), np.ones(2))


@pytest.mark.parametrize(
    ("forecast", "now", "usable", "reason"),
    [
        (None, 0.0, False, "Missing"),
        (series([1.0] * 48), 0.0, True, "Fresh"),
        (series([1.0] * 48), 40 * H, False, "TooShort"),  # 8 h left < 12 h
        (series([1.0] * 48), 48 * H, False, "Expired"),
        (series([1.0] * 48, start_s=H), 0.0, False, "TooShort"),  # starts after now
        (series([1.0] * 48, published_s=-30 * H), 0.0, False, "Stale"),  # 30 h old > 24 h
    ],
)
def test_judge_forecast(forecast: Forecast | None, now: float, usable: bool, reason: str) -> None:
    verdict = judge_forecast(forecast, now)
    assert (verdict.usable, verdict.reason) == (usable, reason)
    assert verdict.message


def test_unusable_forecast_degrades_to_the_flat_figures() -> None:
    chosen, verdict = effective_forecast(None, FLAT, now_s=5000.0, hours=24)
    assert verdict.reason == "Missing"
    assert chosen.source == "Flat" and chosen.start_s == 3600.0 and chosen.hours == 24
    assert set(chosen.carbon.tolist()) == {500.0} and set(chosen.price.tolist()) == {0.6}


def test_builtin_forecast_is_the_simulators_curve() -> None:
    fleet = load_national_fleet()
    gansu = fleet.by_name("gansu-qingyang")
    start = dt.datetime(2023, 4, 3)  # Beijing midnight = 16:00 UTC the day before
    curves = build_curves(fleet.clusters, start=start)
    index = curves.names.index("gansu-qingyang")
    now = dt.datetime(2023, 4, 3, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    forecast = builtin_forecast(
        gansu.province, gansu.region, gansu.location, gansu.power, now, hours=24,
        green_share=contracted_green_share(gansu),
    )  # fmt: skip
    sim = curves.forecast(index, 10, 24)  # replay hour 10 = 10:00 Beijing
    np.testing.assert_allclose(forecast.carbon, sim.carbon)
    np.testing.assert_allclose(forecast.price, sim.price)
    assert forecast.start_s == dt.datetime(2023, 4, 3, 2, tzinfo=dt.UTC).timestamp()
    assert forecast.source == "Builtin"
    # The solar valley: Gansu's midday hours are cleaner than its evening peak.
    assert forecast.carbon[3] < forecast.carbon[10]  # 13:00 vs 20:00 Beijing


def test_builtin_outside_the_model_is_flat() -> None:
    now = dt.datetime(2023, 4, 3, tzinfo=dt.UTC)
    f = builtin_forecast("Shanghai", Region.EAST, "shanghai", FLAT, now, hours=6)
    assert f.source == "Flat" and f.carbon.tolist() == [500.0] * 6


# -- the Carbon Aware SDK exporter's ConfigMap ----------------------------------------------


def sdk_points(start: dt.datetime, values: list[float], minutes: int) -> list[dict[str, object]]:
    return [
        {
            "location": "CN_GANSU",
            "timestamp": (start + dt.timedelta(minutes=minutes * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": minutes,
            "value": v,
        }
        for i, v in enumerate(values)
    ]


def configmap(points: list[dict[str, object]]) -> tuple[dict[str, str], dict[str, str]]:
    """A ConfigMap as the exporter writes it and the API returns it (binaryData base64)."""
    data = {
        "forecastDateTime": "2026-11-29 00:00:00 +0000 UTC",
        "lastHeartbeatTime": "2026-11-28 23:57:26.041158869 +0000 UTC m=+10.861427049",
        "message": "",
        "numOfRecords": str(len(points)),
        "minForecast": f"{min(p['value'] for p in points):f}",  # type: ignore[type-var]
        "maxForecast": f"{max(p['value'] for p in points):f}",  # type: ignore[type-var]
    }
    blob = base64.b64encode(json.dumps(points).encode()).decode()
    return data, {"data": blob}


START = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def test_sdk_configmap_five_minute_points_become_hourly_means() -> None:
    # 24 h of 5-minute points: hour h holds 12 points 400 + h, 400 + h + 1, ... (mean
    # 400 + h + 5.5), so hour 0 averages 405.5 and hour 23 averages 428.5.
    values = [400.0 + h + k for h in range(24) for k in range(12)]
    data, binary = configmap(sdk_points(START, values, 5))
    f = parse_carbon_aware_configmap(data, binary, FLAT)
    assert f.hours == 24 and f.start_s == START.timestamp()
    assert f.carbon[0] == pytest.approx(405.5) and f.carbon[23] == pytest.approx(428.5)
    assert f.carbon_market.tolist() == f.carbon.tolist()
    assert set(f.price.tolist()) == {0.6} and set(f.renewable.tolist()) == {0.3}
    heartbeat = dt.datetime(2026, 11, 28, 23, 57, 26, 41158, tzinfo=dt.UTC)
    assert f.published_s == pytest.approx(heartbeat.timestamp())
    assert f.source == "ConfigMap"
    assert judge_forecast(f, START.timestamp() + 1800).reason == "Fresh"


def test_sdk_configmap_plain_json_in_data_and_unaligned_points() -> None:
    # 90-minute points from 00:30: 100 on [00:30, 02:00), 200 on [02:00, 03:30). Hour 0 is
    # covered by [00:30, 01:00) only → 100; hour 1 → 100; hour 2 → 200; hour 3 half → 200.
    start = START + dt.timedelta(minutes=30)
    points = sdk_points(start, [100.0, 200.0], 90)
    f = parse_carbon_aware_configmap({"data": json.dumps(points)}, None, FLAT)
    assert f.start_s == START.timestamp()
    assert f.carbon.tolist() == pytest.approx([100.0, 100.0, 200.0, 200.0])
    assert f.published_s is None


@pytest.mark.parametrize(
    ("data", "binary", "message"),
    [
        ({}, {}, r"binaryData\.data: missing"),
        ({}, {"data": "not base64 !!"}, "neither a JSON array nor base64"),
        ({"data": "[1, 2"}, None, "malformed JSON"),
        ({"data": "[]"}, None, "non-empty JSON array"),
        ({"data": '[{"timestamp": "yesterday", "duration": 5, "value": 1}]'}, None,
         r"data\[0\]\.timestamp"),
        ({"data": '[{"timestamp": "2026-11-29T00:00:00Z", "duration": 0, "value": 1}]'}, None,
         r"data\[0\]\.duration"),
        ({"data": '[{"timestamp": "2026-11-29T00:00:00Z", "duration": 5, "value": -1}]'}, None,
         r"data\[0\]\.value"),
        ({"data": json.dumps(sdk_points(START, [1.0], 60) + sdk_points(
            START + dt.timedelta(hours=3), [1.0], 60))}, None, "no forecast point covers"),
        ({"data": json.dumps(sdk_points(START, [1.0], 60)), "lastHeartbeatTime": "soon"}, None,
         r"data\.lastHeartbeatTime"),
    ],
)  # fmt: skip
def test_sdk_configmap_bad_input_names_the_field(
    data: dict[str, str], binary: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        parse_carbon_aware_configmap(data, binary, FLAT)


def test_go_time_forms() -> None:
    assert parse_go_time("2023-03-31 00:00:00 +0000 UTC", "f") == dt.datetime(
        2023, 3, 31, tzinfo=dt.UTC
    )
    assert parse_go_time("2023-03-31 08:00:00.5 +0800 CST", "f") == dt.datetime(
        2023, 3, 31, 0, 0, 0, 500000, tzinfo=dt.UTC
    )
