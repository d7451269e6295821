"""What the core returns: a Decision, or a Diagnosis of why no cluster can take the job.

Both keep the arrays the framework computed and turn them into words only when asked
(``verdicts()``), so the simulator and the benchmark pay nothing for explanations they never
read. Read them before reserving more capacity on the same state: reasons about free
capacity are computed from the state as it is when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from computegrid.scheduling.energy import hourly_footprint
from computegrid.scheduling.plugins.base import FilterPlugin, ScorePlugin
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest
from computegrid.scheduling.state import BoolArray, FleetState, FloatArray


@dataclass(frozen=True)
class Verdict:
    """One cluster's outcome for one job: a score, or the filter that rejected it and why."""

    cluster: str
    feasible: bool
    score: float | None
    breakdown: dict[str, float]
    filter: str | None
    reason: str | None
    latency_ms: float
    carbon_intensity: float
    price_per_kwh: float


@dataclass(slots=True)  # not frozen: built on every decision, and frozen init is slower
class Evaluation:
    """The arrays of one scheduling cycle, shared by Decision and Diagnosis."""

    job: JobRequest
    state: FleetState
    filters: Sequence[FilterPlugin]
    masks: Sequence[BoolArray]
    feasible: BoolArray
    scores: Sequence[ScorePlugin] = ()
    score_arrays: Sequence[FloatArray] = ()
    weights: Sequence[float] = ()
    total: FloatArray | None = None

    def first_failure(self, cluster: int) -> tuple[str, str] | None:
        for plugin, mask in zip(self.filters, self.masks, strict=True):
            if not mask[cluster]:
                return plugin.name, plugin.reason(self.job, self.state, cluster)
        return None

    def verdicts(self) -> list[Verdict]:
        latency = self.state.latency_from(self.job.origin)
        out = []
        for i, name in enumerate(self.state.names):
            failure = None if self.feasible[i] else self.first_failure(i)
            ok = failure is None
            out.append(
                Verdict(
                    cluster=name,
                    feasible=ok,
                    score=round(float(self.total[i]), 2) if ok and self.total is not None else None,
                    breakdown=self.breakdown(i) if ok else {},
                    filter=failure[0] if failure else None,
                    reason=failure[1] if failure else None,
                    latency_ms=float(latency[i]),
                    carbon_intensity=float(self.state.carbon[i]),
                    price_per_kwh=float(self.state.price[i]),
                )
            )
        return out

    def breakdown(self, cluster: int) -> dict[str, float]:
        return {
            p.name: round(float(a[cluster]), 2)
            for p, a in zip(self.scores, self.score_arrays, strict=True)
        }


@dataclass(slots=True)
class Decision:
    """The job goes to ``cluster``."""

    evaluation: Evaluation
    index: int
    score: float
    alternatives_wanted: int = 3
    placed: dict[str, int] = field(default_factory=dict)
    # What the scores were computed on, when not the fleet's figures of now (said first)
    basis: tuple[str, ...] = ()

    @property
    def job(self) -> JobRequest:
        return self.evaluation.job

    @property
    def cluster(self) -> ClusterSnapshot:
        return self.evaluation.state.clusters[self.index]

    @property
    def latency_ms(self) -> float:
        return float(self.evaluation.state.latency_from(self.job.origin)[self.index])

    @property
    def breakdown(self) -> dict[str, float]:
        return self.evaluation.breakdown(self.index)

    def alternatives(self) -> list[tuple[str, float]]:
        """The best runners-up as (cluster, score), best first, ties by name."""
        total = self.evaluation.total
        assert total is not None
        others = np.flatnonzero(self.evaluation.feasible)
        others = others[others != self.index]
        order = sorted(others.tolist(), key=lambda i: (-total[i], self.evaluation.state.names[i]))
        return [
            (self.evaluation.state.names[i], round(float(total[i]), 2))
            for i in order[: self.alternatives_wanted]
        ]

    def nearest(self) -> ClusterSnapshot:
        """The cluster nearest the origin among those that offer the compute type (ties by name)."""
        state = self.evaluation.state
        latency = state.latency_from(self.job.origin)
        offering = [
            i for i, c in enumerate(state.clusters) if self.job.compute_type in c.compute_types
        ]
        best = min(offering or [self.index], key=lambda i: (latency[i], state.names[i]))
        return state.clusters[best]

    def savings_per_hour(self) -> tuple[str, float, float]:
        """(nearest cluster, gCO2e saved per hour, CNY saved per hour) against running there."""
        nearest = self.nearest()
        near_g, near_cny = hourly_footprint(self.job, nearest)
        here_g, here_cny = hourly_footprint(self.job, self.cluster)
        return nearest.name, near_g - here_g, near_cny - here_cny

    def reasons(self) -> list[str]:
        """Why this cluster, in words: the plugins that lifted it most first (weight × score),
        then how many clusters were ruled out."""
        ev = self.evaluation
        parts = sorted(
            zip(ev.scores, ev.score_arrays, ev.weights, strict=True),
            key=lambda part: -part[2] * float(part[1][self.index]),  # stable: plugin order on ties
        )
        words = [
            f"{p.name} {a[self.index]:.0f}/100 x{w:g} ({p.explain(self.job, ev.state, self.index)})"
            for p, a, w in parts
        ]
        rejected = int((~ev.feasible).sum())
        if rejected:
            words.append(f"{rejected} of {ev.state.size} clusters filtered out")
        return [*self.basis, *words]


@dataclass(slots=True)
class Diagnosis:
    """No cluster can take the job; ``verdicts()`` says why, per cluster."""

    evaluation: Evaluation

    @property
    def job(self) -> JobRequest:
        return self.evaluation.job

    def reasons(self) -> dict[str, str]:
        """Cluster name → "<Filter>: <why>", what a person reads in kubectl describe."""
        return {
            v.cluster: f"{v.filter}: {v.reason}" for v in self.evaluation.verdicts() if v.filter
        }

    def summary(self) -> str:
        """``0/10 clusters can take the job: 7 LatencyBudget, 3 ComputeType``."""
        counts: dict[str, int] = {}
        for v in self.evaluation.verdicts():
            if v.filter:
                counts[v.filter] = counts.get(v.filter, 0) + 1
        parts = ", ".join(f"{n} {f}" for f, n in sorted(counts.items(), key=lambda x: -x[1]))
        return f"0/{self.evaluation.state.size} clusters can take the job: {parts}"


Result = Decision | Diagnosis
