"""Round-trip time between cities: the data's matrix where it has a cell, else its method.

The reference matrix (``latency_ms.yaml``) estimates every off-diagonal cell the same way:
great-circle distance x 1.5 route factor (the 2023 MIIT target for direct links), at 1 ms of
RTT per 100 km of fibre. Pairs outside the matrix are estimated by that very method so that
the two never disagree; a city with itself gets the data's intra-city RTT (2 ms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def estimated_rtt_ms(km: float, route_factor: float = 1.5, ms_per_100km: float = 1.0) -> float:
    """The matrix's method: ``km x route_factor / 100`` ms, rounded to 0.1 ms like the data."""
    return round(km * route_factor / 100.0 * ms_per_100km, 1)


@dataclass(frozen=True)
class LatencyModel:
    """City coordinates plus the reference cells; answers ``rtt_ms(a, b)`` for known keys."""

    coordinates: Mapping[str, tuple[float, float]]
    matrix: Mapping[tuple[str, str], float] = field(default_factory=dict)
    intra_city_ms: float = 2.0
    route_factor: float = 1.5

    def knows(self, city: str) -> bool:
        return city in self.coordinates

    def rtt_ms(self, a: str, b: str) -> float:
        """RTT in ms; ``KeyError`` names a city the model has no coordinates for."""
        if a == b:
            return self.intra_city_ms
        cell = self.matrix.get((a, b))
        if cell is not None:
            return cell
        (lat1, lon1), (lat2, lon2) = self.coordinates[a], self.coordinates[b]
        return estimated_rtt_ms(great_circle_km(lat1, lon1, lat2, lon2), self.route_factor)
