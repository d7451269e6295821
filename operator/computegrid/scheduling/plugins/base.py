"""The plugin shapes of the kube-scheduler framework, vectorised over clusters.

A Filter answers, for every cluster at once, whether the job may go there, and says why not
for one cluster when asked (only for the clusters a person will read about). A Score gives
every cluster a number in [0, 100]; the framework clamps it (Normalize) and takes the
weighted sum. ``static`` plugins depend only on the job's fixed fields and the fleet, never on
free capacity, so the framework caches their arrays per ``cache_key``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import BoolArray, FleetState, FloatArray


class FilterPlugin(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def static(self) -> bool: ...

    def cache_key(self, job: JobRequest) -> Hashable: ...

    def feasible(self, job: JobRequest, state: FleetState) -> BoolArray: ...

    def reason(self, job: JobRequest, state: FleetState, cluster: int) -> str: ...


class ScorePlugin(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def static(self) -> bool: ...

    def cache_key(self, job: JobRequest) -> Hashable: ...

    def score(self, job: JobRequest, state: FleetState) -> FloatArray: ...

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str: ...
