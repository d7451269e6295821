"""Filter: the cluster's location is a city the latency model knows.

Why a filter: a MemberCluster whose ``location`` is not in the model (``atlantis``) has no
RTT to any origin. Left in, it raised ``KeyError`` inside every scheduling cycle and so held
up every job; filtered out, it costs only itself, and the diagnosis says why per cluster.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "KnownLocation"


@dataclass(frozen=True)
class KnownLocation:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        return state.known_location.copy()

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        location = state.clusters[cluster].location
        return f"location {location!r} is not a city of the latency model"
