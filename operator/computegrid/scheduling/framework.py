"""The scheduling cycle: run the filters, score what is left, pick the best, ties by name.

>>> scheduler = Scheduler()                      # the default policy
>>> state = FleetState(snapshots, latency)       # compiled once per fleet view
>>> result = scheduler.schedule(job, state)      # Decision or Diagnosis
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling.latency import LatencyModel
from computegrid.scheduling.plugins import SCORES, build_filter, build_score
from computegrid.scheduling.plugins.base import FilterPlugin, ScorePlugin
from computegrid.scheduling.policy import DEFAULT_POLICY, Policy
from computegrid.scheduling.result import Decision, Diagnosis, Evaluation, Result
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest
from computegrid.scheduling.state import BoolArray, FleetState, FloatArray


class Scheduler:
    """Plugins built once from a Policy; ``schedule`` is pure given the state."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self.filters: list[FilterPlugin] = [
            build_filter(name, policy.plugin_args.get(name, {})) for name in policy.filters
        ]
        self.scores: dict[LatencySensitivity, list[tuple[ScorePlugin, float]]] = {}
        built: dict[str, ScorePlugin] = {}
        for sensitivity, weights in policy.weights.items():
            chosen = []
            for name in SCORES:
                weight = float(weights.get(name, 0.0))
                if weight > 0:
                    if name not in built:
                        built[name] = build_score(name, policy.plugin_args.get(name, {}))
                    chosen.append((built[name], weight))
            self.scores[sensitivity] = chosen

    def _static_masks(
        self, job: JobRequest, state: FleetState
    ) -> tuple[list[BoolArray | None], BoolArray]:
        """Masks of the static filters and their AND, cached per job signature."""
        key = ("masks", tuple(f.cache_key(job) if f.static else None for f in self.filters))

        def compute() -> tuple[list[BoolArray | None], BoolArray]:
            masks = [f.feasible(job, state) if f.static else None for f in self.filters]
            combined = np.ones(state.size, dtype=bool)
            for mask in masks:
                if mask is not None:
                    combined &= mask
            return masks, combined

        result: tuple[list[BoolArray | None], BoolArray] = state.cached(key, compute)
        return result

    def _static_scores(
        self, job: JobRequest, state: FleetState
    ) -> tuple[list[FloatArray | None], FloatArray]:
        """Normalised static score arrays and their weighted sum, cached per signature."""
        plugins = self.scores[job.sensitivity]
        key = ("scores", job.sensitivity, tuple(p.cache_key(job) for p, _ in plugins))

        def compute() -> tuple[list[FloatArray | None], FloatArray]:
            arrays: list[FloatArray | None] = []
            partial = np.zeros(state.size)
            for plugin, weight in plugins:
                if plugin.static:
                    array = np.clip(plugin.score(job, state), 0.0, 100.0)
                    partial += weight * array
                    arrays.append(array)
                else:
                    arrays.append(None)
            return arrays, partial

        result: tuple[list[FloatArray | None], FloatArray] = state.cached(key, compute)
        return result

    def schedule(self, job: JobRequest, state: FleetState) -> Result:
        static, feasible = self._static_masks(job, state)
        masks: list[BoolArray] = []
        for plugin, mask in zip(self.filters, static, strict=True):
            if mask is None:
                mask = plugin.feasible(job, state)
                feasible = feasible & mask
            masks.append(mask)
        if not feasible.any():
            return Diagnosis(Evaluation(job, state, self.filters, masks, feasible))
        plugins = self.scores[job.sensitivity]
        static_arrays, total = self._static_scores(job, state)
        arrays: list[FloatArray] = []
        weight_sum = 0.0
        for (scorer, weight), cached in zip(plugins, static_arrays, strict=True):
            array = cached
            if array is None:
                array = np.clip(scorer.score(job, state), 0.0, 100.0)
                total = total + weight * array
            arrays.append(array)
            weight_sum += weight
        total = total / weight_sum
        best = int(np.argmax(np.where(feasible, total, -np.inf)))  # first max: lowest name
        evaluation = Evaluation(
            job,
            state,
            self.filters,
            masks,
            feasible,
            [p for p, _ in plugins],
            arrays,
            [w for _, w in plugins],
            total,
        )
        return Decision(evaluation, best, float(total[best]), self.policy.alternatives)


def schedule_many(
    jobs: Iterable[JobRequest],
    snapshots: Sequence[ClusterSnapshot] | FleetState,
    latency: LatencyModel | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> list[Result]:
    """Place jobs one after another, reserving each decision's capacity before the next."""
    if isinstance(snapshots, FleetState):
        state = snapshots
    else:
        if latency is None:
            raise ValueError("a latency model is needed to compile snapshots")
        state = FleetState(snapshots, latency)
    scheduler = Scheduler(policy)
    results: list[Result] = []
    for job in jobs:
        result = scheduler.schedule(job, state)
        if isinstance(result, Decision):
            result.placed.update(state.reserve(result.index, job))
        results.append(result)
    return results
