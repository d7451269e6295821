"""Filter: the MemberCluster's labels match the job's clusterSelector, and its name the
cluster a parent hub pinned the job to (``spec.placement.pinnedCluster``, Pinned delegation).

The pin is a selection by name, so it lives here rather than in a filter of its own that a
policy could leave out: a child hub must run a pinned job there or say why."""

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
        return (job.selector, job.pinned_cluster)

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        selector, pinned = job.selector, job.pinned_cluster
        return np.array(
            [
                (selector is None or selector.matches(c.labels))
                and (pinned is None or c.name == pinned)
                for c in state.clusters
            ],
            dtype=bool,
        )

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        if job.pinned_cluster is not None and state.clusters[cluster].name != job.pinned_cluster:
            return f"the parent hub pinned the job to {job.pinned_cluster}"
        assert job.selector is not None
        wanted = [f"{k}={v}" for k, v in job.selector.match_labels]
        wanted += [f"{r.key} {r.operator} {list(r.values)}" for r in job.selector.match_expressions]
        return f"labels do not match clusterSelector ({', '.join(wanted)})"
