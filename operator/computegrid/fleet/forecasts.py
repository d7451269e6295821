"""A member's hourly power forecast from the source its MemberCluster names, and the condition.

Sources (``spec.forecastSource``, api/forecast.py): ``Flat`` (the node labels' figures every
hour; also what a MemberCluster without the field gets), ``Builtin`` (the provincial model of
fleet_data/power.py, the simulator's), ``ConfigMap`` (the Carbon Aware SDK exporter's format,
fleet_data/carbon_aware.py, on the member or on the hub). A forecast that is missing, stale,
too short or unreadable degrades to the flat figures, and ``ForecastCurrent`` says so and why:
a degraded plan is visible, never silent.

The read costs one ConfigMap GET at most; the caller refreshes every few minutes per member,
not per job (``--forecast-interval``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from computegrid.api import MemberClusterSpec
from computegrid.api.forecast import (
    FORECAST_CONDITION,
    ConfigMapCluster,
    ForecastSource,
    ForecastSourceType,
)
from computegrid.fleet_data.carbon_aware import parse_carbon_aware_configmap
from computegrid.fleet_data.power import builtin_forecast
from computegrid.scheduling import PowerMix
from computegrid.scheduling.forecast import (
    Forecast,
    ForecastError,
    effective_forecast,
    forecast_status,
)

HOURS = 48
#: (cluster "Member" or "Hub", namespace, name) → the ConfigMap body, None when absent.
ConfigMapReader = Callable[[str, str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class MemberForecast:
    """What a member plans on, and the ``ForecastCurrent`` condition's fields."""

    forecast: Forecast
    current: bool
    reason: str
    message: str

    def status(self) -> dict[str, Any]:
        """``status.forecast`` as the CRD stores it."""
        return forecast_status(self.forecast).model_dump(by_alias=True, exclude_none=True)

    def condition(self) -> tuple[str, str, str, str]:
        return (FORECAST_CONDITION, "True" if self.current else "False", self.reason, self.message)


def member_forecast(
    spec: MemberClusterSpec, flat: PowerMix, now_s: float, read: ConfigMapReader
) -> MemberForecast:
    """The forecast for the next ``HOURS`` from the source ``spec`` names (flat on failure)."""
    source = spec.forecast_source or ForecastSource()
    if source.type is ForecastSourceType.FLAT:
        fallback, _ = effective_forecast(None, flat, now_s, HOURS)
        return MemberForecast(fallback, True, "Flat", "spec.forecastSource is Flat: node labels")
    if source.type is ForecastSourceType.BUILTIN:
        assert source.builtin is not None  # the API's validator requires it
        now = dt.datetime.fromtimestamp(now_s, dt.UTC)
        found = builtin_forecast(
            source.builtin.province, spec.region, spec.location, flat, now, hours=HOURS
        )
        if found.source != ForecastSourceType.BUILTIN.value:
            fallback, _ = effective_forecast(None, flat, now_s, HOURS)
            why = f"the built-in model has no province {source.builtin.province!r}: flat figures"
            return MemberForecast(fallback, False, "NotModelled", why)
        return _judged(found, flat, now_s)
    ref = source.config_map
    assert ref is not None  # the API's validator fills the defaults
    where = f"ConfigMap {ref.namespace}/{ref.name} on the {ref.cluster.value.lower()}"
    try:
        body = read(ref.cluster.value, ref.namespace, ref.name)
    except Exception as exc:  # unreachable, forbidden: flat until the next refresh
        fallback, _ = effective_forecast(None, flat, now_s, HOURS)
        return MemberForecast(fallback, False, "Unreadable", f"{where}: {exc}"[:500])
    if body is None:
        fallback, _ = effective_forecast(None, flat, now_s, HOURS)
        return MemberForecast(fallback, False, "Missing", f"{where} not found: flat figures")
    try:
        parsed = parse_carbon_aware_configmap(
            body.get("data"), body.get("binaryData"), flat, key=ref.key
        )
    except ForecastError as exc:
        fallback, _ = effective_forecast(None, flat, now_s, HOURS)
        return MemberForecast(fallback, False, "Invalid", f"{where}: {exc}: flat figures")
    return _judged(parsed, flat, now_s)


def _judged(forecast: Forecast, flat: PowerMix, now_s: float) -> MemberForecast:
    used, verdict = effective_forecast(forecast, flat, now_s, HOURS)
    message = verdict.message if verdict.usable else f"{verdict.message}: flat figures"
    return MemberForecast(used, verdict.usable, verdict.reason, message)


def hub_or_member(
    hub: Callable[[str, str], Mapping[str, Any] | None],
    member: Callable[[str, str], Mapping[str, Any] | None],
) -> ConfigMapReader:
    """A reader that asks the hub or the member, as the source's ``cluster`` says."""

    def read(cluster: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        if cluster == ConfigMapCluster.HUB.value:
            return hub(namespace, name)
        return member(namespace, name)

    return read
