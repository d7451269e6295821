"""Score: prefer clusters with more capacity left after the job (kube-scheduler's LeastAllocated).

Averaged over the resources the job asks for, on the cluster's totals: spreading keeps room for
the next job and for rescheduling when a member is lost.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray

NAME = "LeastAllocated"


def least_allocated_score(
    free_after: FloatArray | float, inverse_capacity: FloatArray | float
) -> FloatArray:
    """``100 × free_after / capacity``, given 1/capacity (0 where there is none):
    CPU 64 of 256 left → 25."""
    ratio = np.asarray(free_after * inverse_capacity, dtype=float)
    np.maximum(ratio, 0.0, out=ratio)
    np.minimum(ratio, 1.0, out=ratio)
    ratio *= 100.0
    return ratio


def _inverse(capacity: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.where(capacity > 0, 1.0 / capacity, 0.0)


@dataclass(frozen=True)
class LeastAllocated:
    name: str = NAME
    static: bool = False

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        asked = state.asked(job)
        if asked is None:
            return np.zeros(state.size)
        index, amounts = asked
        keep = index != state.resource_index["pods"]  # pod slots are not capacity people buy
        index, amounts = index[keep], amounts[keep]
        alloc, free = state.cluster_totals()
        inverse = state.cached(
            ("inverse-capacity", index.tobytes()), lambda: _inverse(alloc[:, index])
        )
        after = free[:, index] - job.parallelism * amounts
        scores = least_allocated_score(after, inverse)
        result: FloatArray = np.add.reduce(scores, axis=1) * (1.0 / len(index))
        return result

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        return "share of capacity left after the job"
