"""How long work of one shape tends to run, learned from the runs that finished.

A job without a window declares no run time, so the planner used to score it on the power
figures of the hour it starts in. A 6 h training job started in a solar valley then runs
into the evening peak. The run times of finished jobs of the same shape tell how long such
work runs: the share still running ``h`` hours after its start (the survival function).
``RunProfile.weights(job)`` gives, per hour from the start, the expected fraction of that
hour the job is still running; the planner averages each cluster's forecast with those
weights (``FleetForecast.expected_over``): the mean intensity a kWh of such a job meets.

The shape is what the operator sees of every job: compute type, latency class and the pod's
GPU count (a training pod asks for more GPUs than an inference pod). A shape with fewer
than ``min_runs`` finished runs has no profile (the figures of now, as before). The ``keep``
runs of a shape that ended last count, so a profile follows the work as it changes. Runs are
kept by end time, not by the order they are told: the operator's start lists the hub's
finished jobs in no particular order (``record_shape``), so a restart keeps the profile the
hub's history implies rather than starting empty.
"""

from __future__ import annotations

import math
from bisect import insort
from typing import NamedTuple

import numpy as np

from computegrid.api.common import GPU
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FloatArray

MIN_RUNS = 20  # fewer finished runs of a shape say too little about its run time
KEEP_RUNS = 500  # the runs of a shape that ended last count
MAX_HOURS = 48  # weights beyond this many hours are cut (a run longer counts as this long)


Shape = tuple[str, str, float]  # compute type, latency class, GPUs per pod


def shape_of(job: JobRequest) -> Shape:
    """What groups jobs of one kind: compute type, latency class, GPUs per pod."""
    return (job.compute_type.value, job.sensitivity.value, job.pod_resources.get(GPU, 0.0))


class FinishedRun(NamedTuple):
    """One job that succeeded: its shape, seconds from start to completion, and when it ended
    (epoch seconds), which orders its run among the others of its shape."""

    shape: Shape
    run_s: float
    ended_s: float


def _ended(run: tuple[float, float]) -> float:
    return run[0]


class RunProfile:
    """Run times of finished jobs per shape, and the hourly weights they imply."""

    def __init__(self, min_runs: int = MIN_RUNS, keep: int = KEEP_RUNS) -> None:
        if min_runs < 1 or keep < min_runs:
            raise ValueError(f"need 1 <= min_runs <= keep, got {min_runs} and {keep}")
        self.min_runs = min_runs
        self.keep = keep
        # Per shape, (ended_s, run_s) ordered by end time: at most ``keep``, the latest.
        self._runs: dict[Shape, list[tuple[float, float]]] = {}
        self._weights: dict[Shape, FloatArray] = {}  # cached until the shape's runs change

    def record(self, job: JobRequest, run_s: float, ended_s: float | None = None) -> None:
        """One finished run of ``job``'s shape (seconds from its start to its end)."""
        self.record_shape(shape_of(job), run_s, ended_s)

    def record_shape(self, shape: Shape, run_s: float, ended_s: float | None = None) -> None:
        """One finished run of ``shape``, which ended at ``ended_s`` (epoch seconds).

        Without an end time the run counts as the latest (told in the order runs end, as the
        simulator does). With one it takes its place by end time, so runs told out of order
        (a start's list of the hub) keep the ``keep`` that ended last."""
        if not math.isfinite(run_s) or run_s <= 0:
            return
        runs = self._runs.setdefault(shape, [])
        if ended_s is None or not math.isfinite(ended_s):
            runs.append((runs[-1][0] if runs else -math.inf, float(run_s)))
        elif len(runs) >= self.keep and ended_s < runs[0][0]:
            return  # ended before every run kept: it would be the one to go
        else:
            insort(runs, (float(ended_s), float(run_s)), key=_ended)
        if len(runs) > self.keep:
            del runs[: len(runs) - self.keep]
        self._weights.pop(shape, None)

    def runs(self, job: JobRequest) -> int:
        return len(self._runs.get(shape_of(job), ()))

    def weights(self, job: JobRequest) -> FloatArray | None:
        """[hours]: per hour from the start, the expected fraction of it the job still runs;
        sums to the mean run in hours (cut at ``MAX_HOURS``). None: too few runs known."""
        key = shape_of(job)
        runs = self._runs.get(key)
        if runs is None or len(runs) < self.min_runs:
            return None
        cached = self._weights.get(key)
        if cached is None:
            hours = np.fromiter((run_s for _, run_s in runs), float, len(runs)) / HOUR_S
            steps = np.arange(MAX_HOURS, dtype=float)
            cached = np.clip(hours[:, None] - steps[None, :], 0.0, 1.0).mean(axis=0)
            last = int(np.flatnonzero(cached > 0)[-1]) + 1
            cached = cached[:last]
            self._weights[key] = cached
        return cached

    def describe(self, job: JobRequest) -> str | None:
        """What a decision scored over the profile was based on, in words."""
        weights = self.weights(job)
        if weights is None:
            return None
        return (
            "power figures averaged over the run such work makes: "
            f"{_span(float(weights.sum()) * HOUR_S)} on average over the last "
            f"{self.runs(job)} runs of its shape"
        )


class AssumedRun(RunProfile):
    """Every job runs ``run_s``: ``computegrid explain --expected-run``, which has no history
    to learn from, shows what the operator does once it has learned such a run."""

    def __init__(self, run_s: float) -> None:
        super().__init__()
        if not run_s > 0:
            raise ValueError(f"an expected run must be positive, got {run_s}")
        self.run_s = run_s
        hours = run_s / HOUR_S
        self._weights_of_run: FloatArray = np.clip(hours - np.arange(np.ceil(hours)), 0.0, 1.0)

    def weights(self, job: JobRequest) -> FloatArray | None:
        return self._weights_of_run

    def describe(self, job: JobRequest) -> str | None:
        return f"power figures averaged over an assumed run of {_span(self.run_s)}"


def _span(seconds: float) -> str:
    """5 s, 45 min, 5.8 h."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < HOUR_S:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / HOUR_S:.1f} h"
