"""A member's forecast from the source its MemberCluster names, and ForecastCurrent's verdict."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pytest

from computegrid.api import MemberClusterSpec
from computegrid.fleet.forecasts import hub_or_member, member_forecast
from computegrid.scheduling.snapshot import PowerMix

FLAT = PowerMix(renewable_share=0.4, carbon_intensity=480.0, price_per_kwh=0.38)
NOW = dt.datetime(2026, 11, 29, 4, 20, tzinfo=dt.UTC)
NOW_S = NOW.timestamp()
HOUR0 = NOW.replace(minute=0)


def spec(source: dict[str, Any] | None) -> MemberClusterSpec:
    body: dict[str, Any] = {
        "hub": "gansu",
        "region": "west",
        "location": "qingyang",
        "kubeconfigSecretRef": {"name": "m"},
    }
    if source is not None:
        body["forecastSource"] = source
    return MemberClusterSpec.model_validate(body)


def sdk_configmap(
    values: list[float], heartbeat: dt.datetime, start: dt.datetime = HOUR0
) -> dict[str, Any]:
    points = [
        {
            "location": "CN_GANSU",
            "timestamp": (start + dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": 60,
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    beat = heartbeat.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000 UTC m=+1.0")
    blob = base64.b64encode(json.dumps(points).encode()).decode()
    return {"data": {"lastHeartbeatTime": beat}, "binaryData": {"data": blob}}


def reader(found: Mapping[str, Any] | None, where: list[str]) -> Any:
    def read(cluster: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        where.append(f"{cluster}:{namespace}/{name}")
        return found

    return read


def test_no_source_is_flat_and_current() -> None:
    got = member_forecast(spec(None), FLAT, NOW_S, reader(None, []))
    assert (got.current, got.reason) == (True, "Flat")
    assert set(got.forecast.carbon.tolist()) == {480.0} and got.forecast.hours == 48
    assert got.status()["source"] == "Flat" and got.condition()[:2] == ("ForecastCurrent", "True")


def test_builtin_is_the_provincial_model_hour_by_hour() -> None:
    got = member_forecast(
        spec({"type": "Builtin", "builtin": {"province": "Gansu"}}), FLAT, NOW_S, reader(None, [])
    )
    assert (got.current, got.reason, got.forecast.source) == (True, "Fresh", "Builtin")
    assert got.forecast.carbon.min() < 480.0 < got.forecast.carbon.max()  # solar valley, peaks


def test_builtin_without_a_modelled_province_degrades_visibly() -> None:
    got = member_forecast(
        spec({"type": "Builtin", "builtin": {"province": "Tibet"}}), FLAT, NOW_S, reader(None, [])
    )
    assert (got.current, got.reason) == (False, "NotModelled")
    assert "Tibet" in got.message and set(got.forecast.carbon.tolist()) == {480.0}


def test_a_fresh_sdk_configmap_on_the_hub_is_used() -> None:
    where: list[str] = []
    body = sdk_configmap([300.0] * 2 + [90.0] * 22, heartbeat=NOW - dt.timedelta(minutes=5))
    source = {"type": "ConfigMap", "configMap": {"cluster": "Hub", "namespace": "fc", "name": "q"}}
    got = member_forecast(spec(source), FLAT, NOW_S, reader(body, where))
    assert where == ["Hub:fc/q"]
    assert (got.current, got.reason) == (True, "Fresh")
    assert got.forecast.carbon.tolist()[:3] == [300.0, 300.0, 90.0]
    assert got.status()["carbonIntensity"][2] == 90.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "Missing"),
        (sdk_configmap([100.0] * 24, heartbeat=NOW - dt.timedelta(hours=30)), "Stale"),
        (sdk_configmap([100.0] * 4, heartbeat=NOW), "TooShort"),
        ({"data": {}, "binaryData": {"data": "bm90IGpzb24="}}, "Invalid"),
    ],
)
def test_an_unusable_configmap_degrades_to_flat_with_the_reason(
    body: dict[str, Any] | None, reason: str
) -> None:
    got = member_forecast(spec({"type": "ConfigMap"}), FLAT, NOW_S, reader(body, []))
    assert (got.current, got.reason) == (False, reason)
    assert set(got.forecast.carbon.tolist()) == {480.0} and "flat" in got.message


def test_an_unreadable_configmap_degrades_and_says_why() -> None:
    def fails(cluster: str, namespace: str, name: str) -> None:
        raise PermissionError("configmaps is forbidden")

    got = member_forecast(spec({"type": "ConfigMap"}), FLAT, NOW_S, fails)
    assert (got.current, got.reason) == (False, "Unreadable") and "forbidden" in got.message


def test_hub_or_member_asks_where_the_source_says() -> None:
    asked: list[str] = []
    read = hub_or_member(
        lambda n, c: asked.append(f"hub {n}/{c}"), lambda n, c: asked.append(f"member {n}/{c}")
    )
    read("Hub", "a", "b")
    read("Member", "c", "d")
    assert asked == ["hub a/b", "member c/d"]
