"""Filter: data residency, the job's allowed regions."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "AllowedRegions"


@dataclass(frozen=True)
class AllowedRegions:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return job.allowed_regions

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        allowed = job.allowed_regions
        if allowed is None:
            return np.ones(state.size, dtype=bool)
        return np.array([c.region in allowed for c in state.clusters], dtype=bool)

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        allowed = ", ".join(sorted(r.value for r in job.allowed_regions or ()))
        region = state.clusters[cluster].region.value
        return f"region {region} is not in allowedRegions [{allowed}]"
