"""Score: closer to the job's origin is better; the weight rises with the job's sensitivity."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "Latency"
# For unbounded (low) jobs: about the largest RTT between two points of mainland China in the
# reference matrix (Shenzhen-Ulanqab 30.8 ms) with a margin.
UNBOUNDED_SCALE_MS = 40.0


def latency_score(rtt_ms: FloatArray | float, scale_ms: float) -> FloatArray:
    """``100 × (1 − rtt/scale)``: 2.3 ms within a 5 ms budget → 54."""
    return np.asarray(100.0 * np.clip(1.0 - np.asarray(rtt_ms) / scale_ms, 0.0, 1.0), dtype=float)


@dataclass(frozen=True)
class Latency:
    name: str = NAME
    static: bool = True
    unbounded_scale_ms: float = UNBOUNDED_SCALE_MS

    def __post_init__(self) -> None:
        if self.unbounded_scale_ms <= 0:
            raise ValueError(f"{NAME}.unboundedScaleMs must be above 0")

    def cache_key(self, job: JobRequest) -> Hashable:
        return (job.origin, job.latency_budget_ms)

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        scale = job.latency_budget_ms or self.unbounded_scale_ms
        return latency_score(state.latency_from(job.origin), scale)

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        return f"{state.latency_from(job.origin)[cluster]:.1f} ms RTT"
