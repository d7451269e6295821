"""Score: a larger share of renewable power is better."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "RenewableShare"


def renewable_score(share: FloatArray | float) -> FloatArray:
    """``100 × share``: 0.866 → 86.6."""
    return np.asarray(100.0 * np.clip(share, 0.0, 1.0), dtype=float)


@dataclass(frozen=True)
class RenewableShare:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        return renewable_score(state.renewable)

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        return f"{state.renewable[cluster]:.0%} renewable"
