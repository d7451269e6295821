"""Read a carbon-intensity forecast ConfigMap in the Carbon Aware SDK exporter's format.

The Green Software Foundation's Carbon Aware SDK has a Kubernetes exporter,
https://github.com/Azure/kubernetes-carbon-intensity-exporter (the data source of the
carbon-aware-keda-operator, https://github.com/Azure/carbon-aware-keda-operator). It writes
one immutable ConfigMap, by default ``kube-system/carbonintensity``
(pkg/exporter/configmap.go, pkg/exporter/consts.go, examples/carbon-intensity-configmap.yaml):

- ``binaryData.data``: the JSON array of the SDK's ``EmissionsDataDto``, one object per
  forecast point: ``{"location": "PJM_ROANOKE", "timestamp": "2023-03-31T00:00:00Z",
  "duration": 5, "value": 550.98}``; ``duration`` in minutes (5 for WattTime), ``value`` in
  gCO2e/kWh. Read from the API, a binaryData value is base64 text.
- ``data``: ``forecastDateTime`` (when the forecast starts) and ``lastHeartbeatTime`` (when
  the exporter wrote it), both in Go's ``time.Time.String()`` form
  (``2023-03-30 23:57:26.041158869 +0000 UTC m=+10.861427049``), ``numOfRecords``,
  ``minForecast``, ``maxForecast`` and ``message``.

The format carries location-based carbon intensity only: the parsed forecast takes its
market-based intensity, renewable share and price from the member's flat figures (node
labels), and market-based carbon equals location-based (no contracted supply is known).
Points are averaged into hours (time-weighted); an hour the points leave uncovered inside
the forecast's span is an error, not a guess.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from computegrid.api.timing import parse_time
from computegrid.scheduling.forecast import HOUR_S, Forecast, ForecastError
from computegrid.scheduling.snapshot import PowerMix

DEFAULT_NAME = "carbonintensity"
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_KEY = "data"
MAX_POINTS = 48 * 12 * 2  # two days of 5-minute points, twice over: anything larger is wrong

_GO_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r" (?P<offset>[+-]\d{4})(?: [A-Z][A-Za-z0-9+-]*)?(?: m=[+-][0-9.]+)?$"
)


def parse_go_time(text: str, field: str) -> dt.datetime:
    """Go's ``time.Time.String()``: ``2023-03-30 23:57:26.041158869 +0000 UTC m=+10.86``."""
    match = _GO_TIME.match(text.strip())
    if match is None:
        raise ForecastError(f"{field}: {text!r} is not a time like '2023-03-31 00:00:00 +0000 UTC'")
    frac = (match["frac"] or "0")[:6].ljust(6, "0")  # nanoseconds → microseconds
    return dt.datetime.strptime(
        f"{match['date']} {match['time']}.{frac} {match['offset']}", "%Y-%m-%d %H:%M:%S.%f %z"
    )


def _rfc3339(text: Any, field: str) -> dt.datetime:
    if not isinstance(text, str):
        raise ForecastError(f"{field}: expected an RFC 3339 time string, got {text!r}")
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ForecastError(f"{field}: {exc}") from None


def decode_points(raw: str | bytes, field: str) -> list[dict[str, Any]]:
    """The JSON array, from base64 (as the API returns binaryData) or plain JSON text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    stripped = text.strip()
    if not stripped.startswith("["):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ForecastError(f"{field}: neither a JSON array nor base64 of one") from None
    try:
        points = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ForecastError(f"{field}: malformed JSON at character {exc.pos}") from None
    if not isinstance(points, list) or not points:
        raise ForecastError(f"{field}: expected a non-empty JSON array of forecast points")
    if len(points) > MAX_POINTS:
        raise ForecastError(f"{field}: {len(points)} points, more than {MAX_POINTS}")
    return points


def hourly_means(points: list[dict[str, Any]], field: str) -> tuple[float, np.ndarray]:
    """(start of the first hour, time-weighted hourly means) of the points."""
    spans: list[tuple[float, float, float]] = []
    for i, point in enumerate(points):
        where = f"{field}[{i}]"
        if not isinstance(point, dict):
            raise ForecastError(f"{where}: expected an object")
        start = _rfc3339(point.get("timestamp"), f"{where}.timestamp").timestamp()
        minutes, value = point.get("duration"), point.get("value")
        if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes <= 0:
            raise ForecastError(f"{where}.duration: expected minutes > 0, got {minutes!r}")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ForecastError(f"{where}.value: expected gCO2e/kWh, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ForecastError(f"{where}.value: {value!r} is not a finite value ≥ 0")
        spans.append((start, start + 60.0 * minutes, float(value)))
    first = math.floor(min(s for s, _, _ in spans) / HOUR_S) * HOUR_S
    last = max(e for _, e, _ in spans)
    hours = max(1, math.ceil((last - first) / HOUR_S - 1e-9))
    weighted = np.zeros(hours)
    covered = np.zeros(hours)
    for start, end, value in spans:
        for h in range(int((start - first) // HOUR_S), hours):
            lo, hi = first + h * HOUR_S, first + (h + 1) * HOUR_S
            overlap = min(end, hi) - max(start, lo)
            if overlap <= 0:
                if lo >= end:
                    break
                continue
            weighted[h] += value * overlap
            covered[h] += overlap
    if np.any(covered <= 0):
        gap = int(np.flatnonzero(covered <= 0)[0])
        when = dt.datetime.fromtimestamp(first + gap * HOUR_S, dt.UTC).isoformat()
        raise ForecastError(f"{field}: no forecast point covers the hour from {when}")
    return first, weighted / covered


def parse_carbon_aware_configmap(
    data: Mapping[str, str] | None,
    binary_data: Mapping[str, str | bytes] | None,
    flat: PowerMix,
    *,
    key: str = DEFAULT_KEY,
    source: str = "ConfigMap",
) -> Forecast:
    """The hourly forecast in a Carbon Aware SDK exporter ConfigMap (``data``/``binaryData``).

    The points are read from ``binaryData[key]``, else ``data[key]`` (a hand-written
    ConfigMap may hold the JSON as text). ``flat`` fills the series the format lacks.
    """
    data = data or {}
    binary_data = binary_data or {}
    if key in binary_data:
        raw, field = binary_data[key], f"binaryData.{key}"
    elif key in data:
        raw, field = data[key], f"data.{key}"
    else:
        raise ForecastError(f"binaryData.{key}: missing (the exporter writes the forecast there)")
    start_s, carbon = hourly_means(decode_points(raw, field), field)
    published = None
    if data.get("lastHeartbeatTime"):
        published = parse_go_time(data["lastHeartbeatTime"], "data.lastHeartbeatTime").timestamp()
    hours = len(carbon)
    return Forecast(
        start_s=start_s,
        carbon=carbon,
        carbon_market=carbon.copy(),
        renewable=np.full(hours, flat.renewable_share),
        price=np.full(hours, flat.price_per_kwh),
        source=source,
        published_s=published,
    )
