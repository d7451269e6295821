"""Prometheus metrics of the operator, served on ``/metrics`` (prometheus-client).

One module so the names are in one place; handlers record, nothing else does.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram, start_http_server

DECISIONS = Counter(
    "computegrid_decisions_total",
    "Scheduling decisions by outcome (scheduled, unschedulable, invalid, rescheduled).",
    ["outcome"],
)
SCHEDULING_SECONDS = Histogram(
    "computegrid_scheduling_seconds",
    "Time the scheduling core took for one decision.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
DISPATCH_SECONDS = Histogram(
    "computegrid_dispatch_seconds",
    "From ComputeJob creation on the hub to its Job existing on the member.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
PROBE_SECONDS = Histogram(
    "computegrid_member_probe_seconds",
    "Duration of one member probe (nodes, pods, jobs), by member.",
    ["cluster"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MEMBER_READY = Gauge("computegrid_member_ready", "1 when the member is Ready.", ["cluster"])
JOBS = Gauge("computegrid_jobs", "ComputeJobs by phase and cluster.", ["phase", "cluster"])
RESCHEDULES = Counter(
    "computegrid_reschedules_total", "Jobs moved off a lost member.", ["from_cluster"]
)
CARBON_SAVED = Counter(
    "computegrid_carbon_saved_g_per_hour_total",
    "Sum over placed jobs of the estimated gCO2e/h saved against the nearest cluster.",
)
COST_SAVED = Counter(
    "computegrid_cost_saved_cny_per_hour_total",
    "Sum over placed jobs of the estimated CNY/h saved against the nearest cluster.",
)

_phases: dict[str, tuple[str, str]] = {}
_seen: set[tuple[str, str]] = set()


def track_phase(uid: str, phase: str | None, cluster: str | None) -> None:
    """Record a job's phase and cluster (None to forget it) and refresh the gauge."""
    if phase is None:
        _phases.pop(uid, None)
    else:
        _phases[uid] = (phase, cluster or "")
    counts = Tally(_phases.values())
    for key in _seen | set(counts):
        JOBS.labels(phase=key[0], cluster=key[1]).set(counts.get(key, 0))
    _seen.update(counts)


def serve(port: int) -> None:
    if port:
        start_http_server(port)
