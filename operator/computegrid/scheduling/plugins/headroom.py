"""Filter: latency-tolerant work leaves a reserve of each cluster for latency-critical work.

A high-class job (5 ms) can only run in the one or two clusters near its origin; a low-class
job can run anywhere. Without a reserve, low-class work packs the greenest clusters full and the
critical job waits. Jobs of the classes in ``applies_to`` (default: low) may not take a cluster
below ``reserve`` of its allocatable for any resource they ask for (cpu, memory, GPUs; pod slots
are not capacity people buy), counted on the cluster's totals after all of the job's pods.
A cluster with none of a resource has nothing to keep (ResourcesFit speaks for it). A cluster
idle in a resource takes any job that fits: otherwise a job bigger than (1 − reserve) of every
cluster could never run anywhere.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from computegrid.api.common import GPU, LatencySensitivity
from computegrid.api.quantities import format_quantity
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState, FloatArray, IntArray

NAME = "CriticalHeadroom"
RESOURCES = ("cpu", "memory", GPU)
# Tuned on the simulator's training seeds 100-102 (docs/sim.md, "Tuning"): with the default
# weights, 2 % cuts the mean queue wait from 0.94 s to 0.06 s and keeps carbon at 1.049 × the
# LP bound; 3 % (1.051 ×), 5 % (1.054 ×) and 10 % (1.066 ×) cost more carbon than they save
# in waiting.
DEFAULT_RESERVE = 0.02
# Rounding slack, so that leaving exactly the reserve (e.g. 6.4 of 64 cpu) is allowed.
_EPSILON = 1e-9


def keeps_headroom(
    free: FloatArray | float,
    need: FloatArray | float,
    allocatable: FloatArray | float,
    reserve: float,
) -> BoolArray:
    """``free − need ≥ reserve × allocatable``, or the cluster is idle in it (``free =
    allocatable``): 64 cpu, 12 free, 8 asked → 4 ≥ 6.4? no → False; 64 free, 60 asked → True."""
    return np.asarray(np.asarray(free) - need >= _floor(need, allocatable, reserve), dtype=bool)


def _floor(need: FloatArray | float, allocatable: FloatArray | float, reserve: float) -> FloatArray:
    """The least the cluster may keep after the job: ``min(reserve × alloc, alloc − need)``
    (the second reached only from idle), minus rounding slack; −inf where none is allocatable."""
    alloc = np.asarray(allocatable, dtype=float)
    floor = np.minimum(reserve * alloc, alloc - need) - _EPSILON * np.maximum(alloc, 1.0)
    return np.where(alloc > 0, floor, -np.inf)


def _percent(share: float) -> str:
    """``0.015625 → "1.6%"``, ``0.1 → "10%"``."""
    return f"{share:.1%}".replace(".0%", "%")


@dataclass(frozen=True)
class CriticalHeadroom:
    name: str = NAME
    static: bool = False
    reserve: float = DEFAULT_RESERVE
    applies_to: frozenset[LatencySensitivity] = field(
        default_factory=lambda: frozenset({LatencySensitivity.LOW})
    )

    def __post_init__(self) -> None:
        if isinstance(self.reserve, bool) or not isinstance(self.reserve, int | float):
            raise ValueError(f"{NAME}.reserve must be a number, got {self.reserve!r}")
        if not 0.0 <= self.reserve < 1.0:
            raise ValueError(f"{NAME}.reserve must be in [0, 1), got {self.reserve}")
        raw: Any = self.applies_to
        if isinstance(raw, str):
            raw = [raw]
        try:
            classes = frozenset(LatencySensitivity(c) for c in raw)
        except (TypeError, ValueError):
            known = ", ".join(s.value for s in LatencySensitivity)
            raise ValueError(
                f"{NAME}.applies_to must list latency classes ({known}), got {raw!r}"
            ) from None
        if not classes:
            raise ValueError(f"{NAME}.applies_to must name at least one latency class")
        object.__setattr__(self, "reserve", float(self.reserve))
        object.__setattr__(self, "applies_to", classes)

    def cache_key(self, job: JobRequest) -> Hashable:
        return None

    def _asked(
        self, state: FleetState, job: JobRequest
    ) -> tuple[IntArray, FloatArray, list[tuple[int, FloatArray]]]:
        """(resource indices kept, the job's total there, and per kept resource the least
        free amount per cluster that passes: floor + need), cached per request and
        parallelism."""
        request = state.request_vector(job)
        assert request is not None

        def compute() -> tuple[IntArray, FloatArray, list[tuple[int, FloatArray]]]:
            kept = [state.resource_index[r] for r in RESOURCES if r in state.resource_index]
            index = np.array([i for i in kept if request[i] > 0], dtype=np.int64)
            need = job.parallelism * request[index]
            floor = _floor(need, state.cluster_totals()[0][:, index], self.reserve)
            least = floor + need
            return index, need, [(int(i), least[:, k].copy()) for k, i in enumerate(index)]

        result: tuple[IntArray, FloatArray, list[tuple[int, FloatArray]]] = state.cached(
            ("headroom", self.reserve, job.parallelism, request.tobytes()), compute
        )
        return result

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray:
        if job.sensitivity not in self.applies_to or state.request_vector(job) is None:
            return np.ones(state.size, dtype=bool)
        free = state.cluster_totals()[1]
        ok = np.ones(state.size, dtype=bool)
        # free ≥ floor + need, column by column: faster than a reduce over a [clusters, 2-3]
        # gather at this size
        for column, least in self._asked(state, job)[2]:
            ok &= free[:, column] >= least
        return ok

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        if job.sensitivity not in self.applies_to or state.request_vector(job) is None:
            return "keeps its headroom"
        index, need, _ = self._asked(state, job)
        alloc, free = state.cluster_totals()
        for i, asked in zip(index, need, strict=True):
            total = float(alloc[cluster, i])
            after = float(free[cluster, i]) - float(asked)
            if not keeps_headroom(float(free[cluster, i]), float(asked), total, self.reserve):
                resource = state.resources[i]
                left = format_quantity(max(after, 0.0), resource)
                return (
                    f"would leave {_percent(max(after, 0.0) / total)} of {resource} free "
                    f"({left} of {format_quantity(total, resource)}); "
                    f"{job.sensitivity.value}-sensitivity jobs keep {_percent(self.reserve)} "
                    "for latency-critical work"
                )
        return "keeps its headroom"
