"""Filter: the MemberCluster's labels match the job's clusterSelector."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "ClusterSelector"


@dataclass(frozen=True)
class ClusterSelectorFilter:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return job.selector

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        selector = job.selector
        if selector is None:
            return np.ones(state.size, dtype=bool)
        return np.array([selector.matches(c.labels) for c in state.clusters], dtype=bool)

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        assert job.selector is not None
        wanted = [f"{k}={v}" for k, v in job.selector.match_labels]
        wanted += [f"{r.key} {r.operator} {list(r.values)}" for r in job.selector.match_expressions]
        return f"labels do not match clusterSelector ({', '.join(wanted)})"
