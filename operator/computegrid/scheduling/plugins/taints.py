"""Filter: every NoSchedule/NoExecute taint of the cluster is tolerated by the job."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import ClusterTaint, JobRequest, JobToleration
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "TaintToleration"
BLOCKING = ("NoSchedule", "NoExecute")  # PreferNoSchedule only lowers nothing here


def untolerated(
    taints: tuple[ClusterTaint, ...], tolerations: tuple[JobToleration, ...]
) -> list[ClusterTaint]:
    """The blocking taints no toleration matches."""
    return [
        t
        for t in taints
        if t.effect in BLOCKING and not any(tol.tolerates(t) for tol in tolerations)
    ]


@dataclass(frozen=True)
class TaintToleration:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return job.tolerations

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        return np.array(
            [not untolerated(c.taints, job.tolerations) for c in state.clusters], dtype=bool
        )

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        bad = untolerated(state.clusters[cluster].taints, job.tolerations)
        text = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in bad)
        return f"untolerated taint {text}"
