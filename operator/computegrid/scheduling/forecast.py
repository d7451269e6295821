"""Hourly power forecasts of member clusters, and when to trust one.

A ``Forecast`` is one cluster's next hours: point ``i`` holds for ``[start_s + i·3600,
start_s + (i+1)·3600)``. Times are plain seconds (Unix time in the operator, replay time in
the simulator): the core has no clock, the caller says what "now" is.

``judge_forecast`` decides whether a forecast may steer placement; when it may not (missing,
expired, too short, too old) the cluster is planned on its flat figures (the node labels)
and the reason goes into a condition, so a degraded plan is visible, never silent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from computegrid.api.forecast import ForecastSourceType, ForecastStatus
from computegrid.api.timing import parse_time
from computegrid.scheduling.snapshot import PowerMix

FloatArray = npt.NDArray[np.float64]
HOUR_S = 3600.0
FIELDS = ("carbon", "carbon_market", "renewable", "price")

#: A forecast must reach at least this far past "now" to plan a day-long window on it.
MIN_AHEAD_HOURS = 12
#: A forecast published longer ago than this is stale (the SDK exporter refreshes every 12 h
#: by default; twice that allows one missed refresh).
MAX_AGE_S = 24 * HOUR_S


class ForecastError(ValueError):
    """A forecast that cannot be used as given; the message names the field."""


@dataclass(frozen=True, eq=False)
class Forecast:
    """Hourly points from ``start_s``: gCO2e/kWh (location, market), share 0..1, CNY/kWh."""

    start_s: float
    carbon: FloatArray
    carbon_market: FloatArray
    renewable: FloatArray
    price: FloatArray
    source: str = "Builtin"
    published_s: float | None = None  # when the source produced it, if it says

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, f)) for f in FIELDS}
        if len(lengths) != 1 or 0 in lengths:
            raise ForecastError("forecast: every series needs the same, non-zero number of hours")
        for name in FIELDS:
            values = getattr(self, name)
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ForecastError(f"forecast.{name}: values must be finite and ≥ 0")
        if np.any(self.renewable > 1):
            raise ForecastError("forecast.renewable: shares must be ≤ 1")

    @property
    def hours(self) -> int:
        return len(self.carbon)

    @property
    def end_s(self) -> float:
        return self.start_s + self.hours * HOUR_S

    @classmethod
    def flat(cls, mix: PowerMix, start_s: float, hours: int, source: str = "Flat") -> Forecast:
        """Every hour at the cluster's own figures (market-based = location-based)."""
        ones = np.ones(hours)
        return cls(
            start_s=start_s,
            carbon=mix.carbon_intensity * ones,
            carbon_market=mix.carbon_intensity * ones,
            renewable=mix.renewable_share * ones,
            price=mix.price_per_kwh * ones,
            source=source,
        )

    def series(self, name: str) -> FloatArray:
        if name not in FIELDS:
            raise KeyError(name)
        values: FloatArray = getattr(self, name)
        return values

    def mean_over(self, name: str, t0_s: FloatArray | float, duration_s: float) -> FloatArray:
        """Mean of one series over ``[t0, t0 + duration)`` for each start ``t0``.

        Exact for the step function (partial hours pro rata). Outside the forecast's span the
        series is taken at its own mean: what is known on average, not a guess of the hour.
        Points 10, 20, 30 from 0 s, a 1.5 h run from 0.5 h: ∫ = 0.5 h·10 + 1 h·20 = 25, mean
        25/1.5 = 16.67.
        """
        values = self.series(name)
        t0 = np.atleast_1d(np.asarray(t0_s, dtype=float))
        if duration_s <= 0:
            raise ForecastError("duration must be > 0")
        mean = float(values.mean())
        cumulative = np.concatenate([[0.0], np.cumsum(values - mean)])
        grid = self.start_s + HOUR_S * np.arange(self.hours + 1)

        # ∫ (v − mean) dt in hours is piecewise linear in t with knots on the hour grid, 0
        # before the span and constant after: np.interp integrates the step function exactly.
        def integral(t: FloatArray) -> FloatArray:
            return np.asarray(np.interp(t, grid, cumulative), dtype=float)

        excess = (integral(t0 + duration_s) - integral(t0)) * HOUR_S / duration_s
        return np.asarray(mean + excess, dtype=float)


@dataclass(frozen=True)
class ForecastVerdict:
    """Whether a forecast may steer placement, and why not when it may not."""

    usable: bool
    reason: str  # Fresh | Missing | Expired | TooShort | Stale
    message: str


def judge_forecast(
    forecast: Forecast | None,
    now_s: float,
    *,
    min_ahead_hours: float = MIN_AHEAD_HOURS,
    max_age_s: float = MAX_AGE_S,
) -> ForecastVerdict:
    """Fresh only if it covers now, reaches ``min_ahead_hours`` ahead and is recent enough."""
    if forecast is None:
        return ForecastVerdict(False, "Missing", "no forecast: planning on the flat figures")
    if forecast.start_s > now_s:
        return ForecastVerdict(
            False, "TooShort", "the forecast starts in the future: it does not cover now"
        )
    ahead_h = (forecast.end_s - now_s) / HOUR_S
    if ahead_h <= 0:
        return ForecastVerdict(False, "Expired", "the forecast ended before now")
    if ahead_h < min_ahead_hours:
        return ForecastVerdict(
            False,
            "TooShort",
            f"the forecast reaches {ahead_h:.1f} h ahead, fewer than {min_ahead_hours:g} h",
        )
    published = forecast.published_s if forecast.published_s is not None else forecast.start_s
    age_h = (now_s - published) / HOUR_S
    if now_s - published > max_age_s:
        return ForecastVerdict(
            False, "Stale", f"the forecast is {age_h:.1f} h old, older than {max_age_s / 3600:g} h"
        )
    return ForecastVerdict(True, "Fresh", f"{forecast.source} forecast, {ahead_h:.0f} h ahead")


def effective_forecast(
    forecast: Forecast | None, flat: PowerMix, now_s: float, hours: int = 48
) -> tuple[Forecast, ForecastVerdict]:
    """The forecast to plan on: the given one when usable, else flat figures from now."""
    verdict = judge_forecast(forecast, now_s)
    if verdict.usable and forecast is not None:
        return forecast, verdict
    start = np.floor(now_s / HOUR_S) * HOUR_S
    return Forecast.flat(flat, float(start), hours), verdict


def rfc3339(seconds: float) -> str:
    """``1796018400.0`` → ``2026-11-30T06:00:00Z``."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def forecast_status(forecast: Forecast, digits: int = 2) -> ForecastStatus:
    """The compact form for ``MemberCluster.status.forecast`` (values rounded)."""

    def listed(values: FloatArray, places: int = digits) -> list[float]:
        return [round(float(v), places) for v in values]

    return ForecastStatus(
        source=ForecastSourceType(forecast.source),
        start=rfc3339(forecast.start_s),
        published=None if forecast.published_s is None else rfc3339(forecast.published_s),
        carbon_intensity=listed(forecast.carbon, 1),
        carbon_intensity_market=listed(forecast.carbon_market, 1),
        renewable_share=listed(forecast.renewable, 4),
        price_per_kwh=listed(forecast.price, 4),
    )


def forecast_from_status(status: ForecastStatus) -> Forecast:
    """Back from the status form (what the operator reads on the next decision)."""
    published = None if status.published is None else parse_time(status.published).timestamp()
    return Forecast(
        start_s=parse_time(status.start).timestamp(),
        carbon=np.array(status.carbon_intensity, dtype=float),
        carbon_market=np.array(status.carbon_intensity_market, dtype=float),
        renewable=np.array(status.renewable_share, dtype=float),
        price=np.array(status.price_per_kwh, dtype=float),
        source=status.source.value,
        published_s=published,
    )
