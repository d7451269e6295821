"""Score: cheaper electricity is better."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "PowerPrice"
# Above the dearest industrial tariffs in the data (east default 0.60 CNY/kWh, peak × 1.7).
CEILING_CNY_PER_KWH = 1.0


def price_score(
    cny_per_kwh: FloatArray | float, ceiling: float = CEILING_CNY_PER_KWH
) -> FloatArray:
    """``100 × (1 − price/ceiling)``: 0.35 CNY/kWh → 65; 0.60 → 40."""
    return np.asarray(100.0 * (1.0 - np.minimum(cny_per_kwh, ceiling) / ceiling), dtype=float)


@dataclass(frozen=True)
class PowerPrice:
    name: str = NAME
    static: bool = True
    ceiling: float = CEILING_CNY_PER_KWH

    def __post_init__(self) -> None:
        if self.ceiling <= 0:
            raise ValueError(f"{NAME}.ceiling must be above 0, got {self.ceiling}")

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        return price_score(state.price, self.ceiling)

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        return f"{state.price[cluster]:.3g} CNY/kWh"
