"""Filter: every one of the job's pods fits on some node (a per-node bin-packing check).

A cluster with 8 free GPUs spread as 2+2+2+2 cannot run one pod that asks for 4: summing the
cluster's free capacity would say yes, so the check is per node. Pods only go to nodes of the
job's compute type.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from computegrid.api.quantities import format_quantity
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import TYPE_CODES, BoolArray, FleetState

NAME = "ResourcesFit"


def pods_that_fit(free: float, request: float) -> int:
    """Whole pods of size ``request`` that fit into ``free`` (``8 free / 3 each → 2``)."""
    return int(free // request) if request > 0 else 0


@dataclass(frozen=True)
class ResourcesFit:
    name: str = NAME
    static: bool = False

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        return state.pods_fitting_per_cluster(job) >= job.parallelism

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        request = state.request_vector(job)
        if request is None:
            missing = sorted(r for r in job.pod_resources if r not in state.resource_index)
            return f"no node has {', '.join(missing)}"
        fits = int(state.pods_fitting_per_cluster(job)[cluster])
        # The job's type only: a GPU node's free CPU is no room for a general job.
        block = state.rows_by_type_cluster.get((TYPE_CODES[job.compute_type], cluster))
        rows = range(block.start, block.stop) if block else range(0)
        best = {
            r: max((state.node_free[row, i] for row in rows), default=0.0)
            for r, i in state.resource_index.items()
            if request[i] > 0 and r != "pods"
        }
        most = ", ".join(f"{r} {format_quantity(v, r)}" for r, v in best.items())
        return (
            f"fits {fits} of {job.parallelism} pods of {job.compute_type.value} type "
            f"(most free on one node of the type: {most})"
        )
