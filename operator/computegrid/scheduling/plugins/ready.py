"""Filter: only clusters whose last probes succeeded."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "ClusterReady"


@dataclass(frozen=True)
class ClusterReady:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        return state.ready.copy()

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        why = state.clusters[cluster].not_ready_reason
        return f"cluster is not Ready{': ' + why if why else ''}"
