"""Score: a west hub paired with the job's origin city gets a bonus (East Data, West Computing)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "HubPairing"


def pairing_score(paired: bool) -> float:
    """100 when the cluster's hub is paired with the origin city, else 0."""
    return 100.0 if paired else 0.0


@dataclass(frozen=True)
class HubPairing:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return job.origin

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        return np.array([pairing_score(job.origin in c.paired_with) for c in state.clusters])

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        paired = job.origin in state.clusters[cluster].paired_with
        return f"{'paired' if paired else 'not paired'} with {job.origin}"
