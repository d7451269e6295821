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
        # The same minus the plugins that only speak for jobs with data (DataTransfer): a job
        # without data is scored exactly as before they existed.
        self.scores_no_data: dict[LatencySensitivity, list[tuple[ScorePlugin, float]]] = {}
        built: dict[str, ScorePlugin] = {}
        for sensitivity, weights in policy.weights.items():
            chosen: list[tuple[ScorePlugin, float]] = []
            for name in SCORES:
                weight = float(weights.get(name, 0.0))
                if weight > 0:
                    if name not in built:
                        built[name] = build_score(name, policy.plugin_args.get(name, {}))
                    plugin = built[name]
                    bind = getattr(plugin, "bind", None)
                    if bind is not None:  # a plugin that weighs by the class's other weights
                        plugin = bind(weights, policy.plugin_args)
                    chosen.append((plugin, weight))
            self.scores[sensitivity] = chosen
            self.scores_no_data[sensitivity] = [
                (p, w) for p, w in chosen if not getattr(p, "only_for_data", False)
            ]

    def score_plugins(self, job: JobRequest) -> list[tuple[ScorePlugin, float]]:
        """The weighted score plugins that speak for this job."""
        table = self.scores if job.data is not None else self.scores_no_data
        return table[job.sensitivity]

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
        plugins = self.score_plugins(job)
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
        plugins = self.score_plugins(job)
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
