"""Filter: the job's inputs can reach the cluster in time.

Refuses a cluster when moving the job's data there alone takes longer than the job can wait:
its deadline (``spec.timing``: the latest start minus the time of the request) or its latency
class's cap. A latency-critical (high) job serves users now, so its data may take at most
``high_s`` (60 s: about 70 GiB at the 10 Gbps of an inter-hub path); a medium job at most
``medium_s`` (1 h); a low job only its deadline. The caps are our choice, not a standard.
A job without data passes everywhere; data already in the cluster's city takes no time.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState
from computegrid.scheduling.transfer import duration_words, size_words, transfer_of

NAME = "TransferTime"
DEFAULT_HIGH_S = 60.0
DEFAULT_MEDIUM_S = 3600.0


@dataclass(frozen=True)
class TransferTime:
    name: str = NAME
    static: bool = True
    high_s: float = DEFAULT_HIGH_S
    medium_s: float = DEFAULT_MEDIUM_S

    def __post_init__(self) -> None:
        for arg in ("high_s", "medium_s"):
            if getattr(self, arg) < 0:
                raise ValueError(f"{NAME}.{arg} must be ≥ 0, got {getattr(self, arg)}")

    def cache_key(self, job: JobRequest) -> Hashable:
        data = job.data
        if data is None:
            return None
        return (data.inputs, id(data.network), data.transfer_budget_s, job.sensitivity)

    def limit_s(self, job: JobRequest) -> tuple[float, str]:
        """The longest the transfer may take, and what sets it (deadline or class)."""
        caps = {LatencySensitivity.HIGH: self.high_s, LatencySensitivity.MEDIUM: self.medium_s}
        limit, why = caps.get(job.sensitivity, np.inf), f"the {job.sensitivity.value} class cap"
        budget = job.data.transfer_budget_s if job.data is not None else None
        if budget is not None and budget < limit:
            limit, why = max(budget, 0.0), "the deadline"
        return limit, why

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        if job.data is None:
            return np.ones(state.size, dtype=bool)
        limit, _ = self.limit_s(job)
        seconds = transfer_of(job.data, state).seconds
        return np.asarray(np.isfinite(seconds) & (seconds <= limit), dtype=bool)  # inf: unknown

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        assert job.data is not None
        moved = transfer_of(job.data, state)
        if moved.unknown is not None:
            return f"spec.data: {moved.unknown!r} is neither a known city nor a member cluster"
        limit, why = self.limit_s(job)
        return (
            f"moving {size_words(float(moved.moved_gib[cluster]))} from "
            f"{', '.join(moved.sources)} takes {duration_words(float(moved.seconds[cluster]))}, "
            f"more than the {duration_words(limit)} {why} allows"
        )
