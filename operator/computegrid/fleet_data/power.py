"""Hourly carbon-intensity and price curves per cluster for one year: every value `estimated`.

No public hourly carbon-intensity data exists for Chinese provinces, so the curves follow the
model of ``fleet_data/data/power-profiles.md`` ("A simple model"); the numbers marked (L)
there, and the per-province split of clean supply below, are our assumptions:

- Fossil factor ``EF_f = 536.6 / 0.647 ≈ 829.4`` gCO2/kWh (MEE 2022 national factor over the
  2023 fossil share). Annual fossil share of a cluster's province ``F_p = EF_p / EF_f``.
- Clean supply by hour ``C(h) = α·clean·(n + hyd·k_hyd(m) + w·k_w(m)·w(h) + s·k_s(m)·s(h))``
  with every term's shape normalised to an annual mean of 1; ``s(h)`` a bell (σ 2.5 h) on
  local solar noon ``12 + (120 − lon)/15`` h, ``w(h) = 1 + 0.2·cos(2π(h − 4)/24)``,
  ``k_hyd`` 1.35 Jun–Oct, 1.0 May/Nov, 0.7 Dec–Apr, ``k_w`` 1.2 spring, 0.8 summer, 1.0
  otherwise, ``k_s`` 1.15 May–Aug, 0.85 Nov–Feb, 1.0 otherwise (ours).
- Hourly fossil share ``F(h) = clip(1 − C(h), F_min, 1)`` with ``α`` found by bisection so
  the annual mean of ``F`` is ``F_p`` (the data's annual factor is kept exactly);
  ``F_min = min(0.25, F_p / 2)`` (must-run thermal; Sichuan's 17 % is below 0.25).
  Location-based intensity ``EF_f · F(h)``.
- Market-based intensity ``(1 − g)·location(h)``, ``g`` the cluster's contracted green share
  where fleet.yaml reads it from the cluster's own report (Horinger 0.8457, Zhongwei 0.5,
  Zhangjiakou 0.33), else 0. The scheduler's renewable share is ``g + (1 − g)(1 − F(h))``.
- Price ``P̄·(g + (1 − g)·m(h)/mean(m))``: time-of-use multipliers ``m`` (Jibei windows for
  Hebei, Guangdong's for Guangdong, Sichuan's windows at the NDRC template ratio, else the
  template peak 1.6 / flat 1 / valley 0.4 with a spring/autumn midday valley in the west);
  the green share ``g`` is priced flat. The annual mean of a flat load is the data's price.
- Scenario ``sichuan-drought-2022``: hydro × 0.5 in Jul–Aug (before the rescaling, so it
  shows as more fossil in those months; the annual mean then rises above the factor).
- The model needs the province's clean split and tariff windows, so it applies to the
  provinces of ``CLEAN_SPLIT`` (``MODEL_PROVINCES``: every cluster of the national fleet, and
  a fleet file's cluster that names one of them in ``province:``, its ``carbonIntensity``
  then being the annual factor and its ``pricePerKWh`` the flat price). Any other cluster
  gets **flat** curves at its own figures: every hour location- and market-based intensity
  ``carbonIntensity``, renewable share ``renewableShare``, price ``pricePerKWh``
  (``PowerCurves.flat`` names them). A file's figures are never a cluster's own contracted
  supply (``g = 0``), so its market-based carbon equals its location-based carbon.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from computegrid.api.common import Region
from computegrid.fleet_data.cities import load_cities
from computegrid.fleet_data.national import FleetCluster
from computegrid.scheduling.forecast import Forecast
from computegrid.scheduling.snapshot import PowerMix

FloatArray = npt.NDArray[np.float64]

YEAR = 2023
HOURS = 8760
NATIONAL_FACTOR = 536.6  # gCO2/kWh, MEE 2022 (hubs.yaml grid_reference)
FOSSIL_SHARE_2023 = 0.647  # coal 60.7 % + gas 3.3 % + other thermal (power-profiles.md)
FOSSIL_FACTOR = NATIONAL_FACTOR / FOSSIL_SHARE_2023  # ≈ 829.4 g/kWh, estimated

# Split of each province's clean supply into (flat: nuclear/biomass, hydro, wind, solar).
# Estimated (L): from the provinces' known character (Sichuan/Chongqing/Guizhou hydro,
# Inner Mongolia/Hebei/Gansu/Ningxia wind and solar, Guangdong/Jiangsu nuclear).
CLEAN_SPLIT: dict[str, tuple[float, float, float, float]] = {
    "Hebei": (0.0, 0.05, 0.55, 0.40),
    "Jiangsu": (0.35, 0.05, 0.35, 0.25),
    "Anhui": (0.15, 0.15, 0.25, 0.45),
    "Guangdong": (0.55, 0.30, 0.08, 0.07),
    "Sichuan": (0.0, 0.90, 0.05, 0.05),
    "Chongqing": (0.0, 0.80, 0.10, 0.10),
    "Inner Mongolia": (0.0, 0.05, 0.75, 0.20),
    "Guizhou": (0.0, 0.70, 0.10, 0.20),
    "Gansu": (0.0, 0.20, 0.45, 0.35),
    "Ningxia": (0.0, 0.05, 0.50, 0.45),
}
MODEL_PROVINCES = tuple(sorted(CLEAN_SPLIT))  # where the hourly model applies; else flat

SCENARIOS = ("base", "sichuan-drought-2022")


def hour_calendar(year: int = YEAR) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(month 1..12, hour of day 0..23) of each hour of the year, Beijing time."""
    start = dt.datetime(year, 1, 1)
    months = np.array([(start + dt.timedelta(hours=h)).month for h in range(HOURS)], dtype=np.int64)
    return months, np.arange(HOURS, dtype=np.int64) % 24


def solar_shape(hour: npt.NDArray[np.int64], longitude: float) -> FloatArray:
    """A bell on local solar noon: at 104° E (Chengdu) noon is 12 + 16/15 ≈ 13.07 h."""
    noon = 12.0 + (120.0 - longitude) / 15.0
    return np.asarray(np.exp(-0.5 * ((hour + 0.5 - noon) / 2.5) ** 2), dtype=float)


def wind_shape(hour: npt.NDArray[np.int64]) -> FloatArray:
    """``1 + 0.2·cos(2π(h − 4)/24)``: 1.2 at 04:00, 0.8 at 16:00."""
    return np.asarray(1.0 + 0.2 * np.cos(2 * np.pi * (hour - 4) / 24.0), dtype=float)


def k_hydro(month: npt.NDArray[np.int64]) -> FloatArray:
    return np.where((month >= 6) & (month <= 10), 1.35, np.where(np.isin(month, (5, 11)), 1.0, 0.7))


def k_wind(month: npt.NDArray[np.int64]) -> FloatArray:
    return np.where(np.isin(month, (3, 4, 5)), 1.2, np.where(np.isin(month, (6, 7, 8)), 0.8, 1.0))


def k_solar(month: npt.NDArray[np.int64]) -> FloatArray:
    return np.where(
        np.isin(month, (5, 6, 7, 8)), 1.15, np.where(np.isin(month, (11, 12, 1, 2)), 0.85, 1.0)
    )


def solve_alpha(annual_share: float, clean: FloatArray, floor: float) -> float:
    """α such that ``clip(1 − α·clean, floor, 1)`` has mean ``annual_share`` (bisection)."""
    target = min(max(annual_share, floor), 1.0)
    lo, hi = 0.0, 1.0 / max(float(clean.min()), 1e-9) + 10.0
    for _ in range(80):  # the mean is monotone non-increasing in α
        alpha = (lo + hi) / 2
        if np.clip(1.0 - alpha * clean, floor, 1.0).mean() > target:
            lo = alpha
        else:
            hi = alpha
    return (lo + hi) / 2


def fossil_floor(annual_share: float) -> float:
    """Must-run thermal: 0.25, or half the annual share where that is lower (Sichuan 0.17)."""
    return min(0.25, annual_share / 2)


def fossil_share_curve(annual_share: float, clean: FloatArray) -> FloatArray:
    """``clip(1 − α·clean, F_min, 1)`` with the annual mean ``annual_share``.

    ``clean`` has mean 1 (a shape); a flat shape gives a flat curve at ``annual_share``.
    """
    floor = fossil_floor(annual_share)
    alpha = solve_alpha(annual_share, clean, floor)
    return np.asarray(np.clip(1.0 - alpha * clean, floor, 1.0), dtype=float)


def clean_shapes(
    province: str, longitude: float, month: npt.NDArray[np.int64], hour: npt.NDArray[np.int64]
) -> tuple[tuple[float, float, float, float], list[FloatArray]]:
    """The split of clean supply and each source's hourly shape, each with annual mean 1."""
    split = CLEAN_SPLIT[province]
    shapes = [
        np.ones(HOURS),
        k_hydro(month),
        k_wind(month) * wind_shape(hour),
        k_solar(month) * solar_shape(hour, longitude),
    ]
    return split, [shape / shape.mean() for shape in shapes]


def tou_multipliers(
    province: str, region: Region, month: npt.NDArray[np.int64], hour: npt.NDArray[np.int64]
) -> FloatArray:
    """Time-of-use multipliers on the flat price, by the windows of power-profiles.md."""
    m = np.ones(len(hour))

    def span(a: int, b: int) -> npt.NDArray[np.bool_]:  # [a, b) hours, wrapping midnight
        return (hour >= a) & (hour < b) if a < b else (hour >= a) | (hour < b)

    if province == "Hebei":  # Jibei grid (L)
        summer, winter = np.isin(month, (6, 7, 8)), np.isin(month, (1, 11, 12))
        other = ~summer & ~winter
        m[summer & span(23, 7)] = 0.3
        m[summer & (span(10, 12) | span(16, 18) | span(21, 22))] = 1.7
        m[summer & span(18, 21)] = 2.04
        m[winter & span(1, 6)] = 0.3
        m[winter & span(12, 15)] = 0.24
        m[winter & span(17, 19)] = 2.04
        m[other & (span(1, 6) | span(12, 15))] = 0.3
        m[other & span(16, 22)] = 1.7
    elif province == "Guangdong":  # 2021 (L)
        m[span(10, 12) | span(14, 19)] = 1.7
        m[span(0, 8)] = 0.38
        m[np.isin(month, (7, 8, 9)) & (span(11, 12) | span(15, 17))] = 1.7 * 1.25
    else:  # Sichuan's windows, else the template; ratio 1.6 : 1 : 0.4 (L)
        if province == "Sichuan":
            m[span(10, 12) | span(15, 21)] = 1.6
        else:
            m[span(10, 12) | span(16, 21)] = 1.6
        m[span(23, 7)] = 0.4
        if region is Region.WEST and province != "Sichuan":
            m[np.isin(month, (3, 4, 5, 9, 10)) & span(11, 15)] = 0.4
        if province == "Sichuan":
            critical = (np.isin(month, (7, 8)) & span(15, 17)) | (
                np.isin(month, (1, 12)) & span(19, 21)
            )
            m[critical] = 1.6 * 1.2
    return m


def contracted_green_share(cluster: FleetCluster) -> float:
    """The cluster's own reported green share (fleet.yaml ``from: clusters.…``), else 0.

    Only a figure read from the cluster's own report counts as contracted supply; a grid
    share, an estimate or a fleet file's ``renewableShare`` (status ``given``) does not.
    """
    source = cluster.power_sources.get("renewable_share")
    if source is not None and source.status != "given" and source.source.startswith("clusters."):
        return float(source.value)
    return 0.0


@dataclass(frozen=True)
class PowerCurves:
    """Hourly curves for one year, shape [8760, clusters], clusters in ``names`` order.

    ``carbon`` is location-based (gCO2/kWh), ``carbon_market`` market-based, ``renewable``
    0..1 as the scheduler sees it, ``price`` CNY/kWh. ``start_hour`` is hour 0 of the replay.
    ``flat`` names the clusters the model does not cover (flat at their own figures).
    """

    names: tuple[str, ...]
    carbon: FloatArray
    carbon_market: FloatArray
    renewable: FloatArray
    price: FloatArray
    green_share: FloatArray
    start_hour: int = 0
    scenario: str = "base"
    flat: tuple[str, ...] = ()

    def at(self, sim_hour: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(carbon, renewable, price) per cluster at hour ``sim_hour`` of the replay."""
        row = (self.start_hour + sim_hour) % HOURS
        return self.carbon[row], self.renewable[row], self.price[row]

    def forecast(self, cluster: int, sim_hour: int, hours: int) -> Forecast:
        """The curves of one cluster for replay hours ``sim_hour ..`` as a Forecast.

        The simulator's forecasts are the curves themselves (a perfect forecast): what the
        operator's ``Builtin`` source publishes for the same cluster and hours.
        """
        rows = (self.start_hour + sim_hour + np.arange(hours)) % HOURS
        return Forecast(
            start_s=sim_hour * 3600.0,
            carbon=self.carbon[rows, cluster],
            carbon_market=self.carbon_market[rows, cluster],
            renewable=self.renewable[rows, cluster],
            price=self.price[rows, cluster],
            source="Flat" if self.names[cluster] in self.flat else "Builtin",
        )

    def window(self, hours: int) -> dict[str, FloatArray]:
        """The curves over replay hours ``0..hours-1`` (wrapping the year)."""
        rows = (self.start_hour + np.arange(hours)) % HOURS
        return {
            "carbon": self.carbon[rows],
            "carbon_market": self.carbon_market[rows],
            "price": self.price[rows],
            "renewable": self.renewable[rows],
        }


@dataclass(frozen=True)
class ClusterCurves:
    """One cluster's four hourly series for the model year (8760 values each)."""

    carbon: FloatArray
    carbon_market: FloatArray
    renewable: FloatArray
    price: FloatArray
    green_share: float
    modelled: bool


def cluster_curves(
    province: str,
    region: Region,
    longitude: float,
    mix: PowerMix,
    *,
    green_share: float = 0.0,
    scenario: str = "base",
) -> ClusterCurves:
    """The model's year for one cluster (flat at ``mix`` if the model does not cover it).

    The one implementation behind the simulator's curves and the operator's ``Builtin``
    forecast: ``mix`` gives the annual carbon factor and the flat price, ``green_share`` the
    cluster's own contracted green supply (0 unless it reported one).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if province not in CLEAN_SPLIT:
        flat = np.full(HOURS, mix.carbon_intensity)
        return ClusterCurves(
            carbon=flat,
            carbon_market=flat,
            renewable=np.full(HOURS, mix.renewable_share),
            price=np.full(HOURS, mix.price_per_kwh),
            green_share=0.0,
            modelled=False,
        )
    month, hour = hour_calendar()
    split, shapes = clean_shapes(province, longitude, month, hour)
    clean = sum((w * s for w, s in zip(split, shapes, strict=True)), np.zeros(HOURS))
    annual = mix.carbon_intensity / FOSSIL_FACTOR
    fossil = fossil_share_curve(annual, clean)
    if scenario == "sichuan-drought-2022" and province == "Sichuan":
        # Same α as the base year, hydro halved in Jul-Aug: more fossil in those months.
        floor = fossil_floor(annual)
        alpha = solve_alpha(annual, clean, floor)
        hydro = np.where(np.isin(month, (7, 8)), 0.5, 1.0) * shapes[1]
        dry = clean - split[1] * shapes[1] + split[1] * hydro
        fossil = np.asarray(np.clip(1.0 - alpha * dry, floor, 1.0), dtype=float)
    g = green_share
    carbon = FOSSIL_FACTOR * fossil
    tou = tou_multipliers(province, region, month, hour)
    return ClusterCurves(
        carbon=carbon,
        carbon_market=(1 - g) * carbon,
        renewable=g + (1 - g) * (1 - fossil),
        price=mix.price_per_kwh * (g + (1 - g) * tou / tou.mean()),
        green_share=g,
        modelled=True,
    )


def longitude_of(location: str) -> float:
    """The city's longitude for solar noon; 110° E (central China) for an unknown city."""
    cities = load_cities()
    return cities[location].lon if location in cities else 110.0


def build_curves(
    clusters: Sequence[FleetCluster],
    *,
    start: dt.datetime | None = None,
    scenario: str = "base",
) -> PowerCurves:
    """The curves of every cluster, sorted by name (the order of ``FleetState``)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    ordered = sorted(clusters, key=lambda c: c.name)
    each = [
        cluster_curves(
            c.province,
            c.region,
            longitude_of(c.location),
            c.power,
            green_share=contracted_green_share(c) if c.province in CLEAN_SPLIT else 0.0,
            scenario=scenario,
        )
        for c in ordered
    ]
    start = start or dt.datetime(YEAR, 4, 3)
    return PowerCurves(
        names=tuple(c.name for c in ordered),
        carbon=np.column_stack([e.carbon for e in each]),
        carbon_market=np.column_stack([e.carbon_market for e in each]),
        renewable=np.column_stack([e.renewable for e in each]),
        price=np.column_stack([e.price for e in each]),
        green_share=np.array([e.green_share for e in each]),
        start_hour=hour_of_year(start),
        scenario=scenario,
        flat=tuple(c.name for c, e in zip(ordered, each, strict=True) if not e.modelled),
    )


BEIJING = dt.timezone(dt.timedelta(hours=8))


def hour_of_year(when: dt.datetime) -> int:
    """Row of the model year for ``when``: Beijing wall-clock time (naive = Beijing)."""
    if when.tzinfo is not None:
        when = when.astimezone(BEIJING).replace(tzinfo=None)
    return int((when - dt.datetime(when.year, 1, 1)).total_seconds() // 3600) % HOURS


def builtin_forecast(
    province: str,
    region: Region,
    location: str,
    mix: PowerMix,
    now: dt.datetime,
    *,
    hours: int = 48,
    green_share: float = 0.0,
) -> Forecast:
    """The model's next ``hours`` from the hour containing ``now`` (an aware datetime).

    The operator's ``Builtin`` source: the same curves the simulator replays, read for the
    calendar hours ahead (the model year's month and hour of day; the year itself is the
    model's 2023). ``mix`` is the member's flat figures (its node labels): annual factor
    and flat price.
    """
    if now.tzinfo is None:
        raise ValueError("builtin_forecast needs an aware datetime (UTC)")
    curves = _cached_curves(province, region, longitude_of(location), mix, green_share)
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    rows = (hour_of_year(hour_start) + np.arange(hours)) % HOURS
    return Forecast(
        start_s=hour_start.timestamp(),
        carbon=curves.carbon[rows],
        carbon_market=curves.carbon_market[rows],
        renewable=curves.renewable[rows],
        price=curves.price[rows],
        source="Builtin" if curves.modelled else "Flat",
        published_s=hour_start.timestamp(),
    )


@functools.lru_cache(maxsize=64)
def _cached_curves(
    province: str, region: Region, longitude: float, mix: PowerMix, green_share: float
) -> ClusterCurves:
    return cluster_curves(province, region, longitude, mix, green_share=green_share)
