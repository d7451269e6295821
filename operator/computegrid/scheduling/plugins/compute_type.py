"""Filter: the cluster has nodes of the compute type the job asks for."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import TYPE_CODES, BoolArray, FleetState

NAME = "ComputeType"


@dataclass(frozen=True)
class ComputeTypeFilter:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return job.compute_type

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        has = state.node_type == TYPE_CODES[job.compute_type]
        counts = np.bincount(state.node_cluster, weights=has, minlength=state.size)
        return counts > 0

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        offered = sorted(t.value for t in state.clusters[cluster].compute_types) or ["nothing"]
        return f"offers {', '.join(offered)}; the job needs {job.compute_type.value}"
