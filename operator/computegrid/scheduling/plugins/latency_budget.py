"""Filter: the RTT from the job's origin to the cluster is within the job's budget."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState

NAME = "LatencyBudget"


def within_budget(rtt_ms: float, budget_ms: float | None) -> bool:
    """``budget None`` is the low class: anywhere goes (13.6 ms ≤ None → True)."""
    return budget_ms is None or rtt_ms <= budget_ms


@dataclass(frozen=True)
class LatencyBudget:
    name: str = NAME
    static: bool = True

    def cache_key(self, job: JobRequest) -> Hashable:
        return (job.origin, job.latency_budget_ms)

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        budget = job.latency_budget_ms
        if budget is None:
            return np.ones(state.size, dtype=bool)
        return state.latency_from(job.origin) <= budget

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        rtt = state.latency_from(job.origin)[cluster]
        return (
            f"RTT {rtt:.1f} ms from {job.origin} exceeds the {job.sensitivity.value} "
            f"budget of {job.latency_budget_ms:g} ms"
        )
