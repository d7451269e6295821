"""Score: lower grid carbon intensity is better."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "CarbonIntensity"
# About the intensity of coal-only generation (China's coal units run ~800-1000 g/kWh): the
# score reaches 0 there. Provincial grid factors 2022 range 140 (Sichuan) to 725 (Hebei).
WORST_G_PER_KWH = 1000.0


def carbon_score(g_per_kwh: FloatArray | float, worst: float = WORST_G_PER_KWH) -> FloatArray:
    """``100 × (1 − g/worst)``: 140.4 g/kWh → 85.96; 725.2 → 27.48."""
    return np.asarray(100.0 * (1.0 - np.minimum(g_per_kwh, worst) / worst), dtype=float)


@dataclass(frozen=True)
class CarbonIntensity:
    name: str = NAME
    static: bool = True
    worst: float = WORST_G_PER_KWH

    def __post_init__(self) -> None:
        if self.worst <= 0:
            raise ValueError(f"{NAME}.worst must be above 0, got {self.worst}")

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        return carbon_score(state.carbon, self.worst)

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        return f"{state.carbon[cluster]:g} gCO2e/kWh"
