"""Prometheus metrics of the operator, served on ``/metrics`` (prometheus-client).

One module so the names are in one place; handlers record, nothing else does.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

DECISIONS = Counter(
    "computegrid_decisions_total",
    "Scheduling decisions by outcome (scheduled, rescheduled, unschedulable, invalid, refused).",
    ["outcome"],
)
JOINT_REPLANS = Counter(
    "computegrid_joint_replans_total",
    "Joint re-plans of the Deferred jobs, by outcome (planned, no-plan, failed).",
    ["outcome"],
)
for _outcome in ("planned", "no-plan", "failed"):  # every outcome on /metrics from the start
    JOINT_REPLANS.labels(outcome=_outcome)
JOINT_MOVED = Counter(
    "computegrid_joint_replan_moves_total",
    "Deferred jobs the joint re-plan gave a new member or start.",
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
HUB_WRITES = Counter(
    "computegrid_hub_writes_total",
    "Calls the operator sent to the hub through its bounded writer, by kind (status, "
    "status-conditional, event, member-status, read).",
    ["kind"],
)
HUB_WATCH_ERRORS = Counter(
    "computegrid_hub_watch_errors_total",
    "Failures of the hub's ComputeJob list or watch (each relists after a backoff).",
)
EVENTS_DROPPED = Counter(
    "computegrid_events_dropped_total", "Events not posted because the hub was too slow."
)
HUB_SWEEP_REMOVED = Counter(
    "computegrid_hub_sweep_removed_total",
    "ComputeJobs a relist of the hub found gone (deleted while the hub's watch was down: no "
    "DELETED event ever came); their member Jobs are then removed.",
)
STARTUP_SECONDS = Gauge(
    "computegrid_startup_seconds",
    "Seconds from process start to each step of the start, noted once (handlers/startclock.py).",
    ["step"],
)
QUEUE_DEPTH = Gauge("computegrid_queue_depth", "ComputeJobs queued or being worked on.")
WAITING = Gauge("computegrid_waiting_for_placement", "ComputeJobs waiting for a cluster.")
RUN_PROFILE_RUNS = Counter(
    "computegrid_run_profile_runs_total",
    "Finished runs learned into the run-time profile that scores jobs without a window.",
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
_counts: dict[tuple[str, str], int] = {}


def track_phase(uid: str, phase: str | None, cluster: str | None) -> None:
    """Record a job's phase and cluster (None to forget it); the gauge moves by one.

    Kept incrementally: recounting every job on each change made the gauge cost grow with the
    number of jobs ever seen (3.4 ms a tick at 10,000).
    """
    new = None if phase is None else (phase, cluster or "")
    old = _phases.get(uid)
    if old == new:
        return
    if old is not None:
        _counts[old] -= 1
        JOBS.labels(phase=old[0], cluster=old[1]).set(_counts[old])
        del _phases[uid]
    if new is not None:
        _phases[uid] = new
        _counts[new] = _counts.get(new, 0) + 1
        JOBS.labels(phase=new[0], cluster=new[1]).set(_counts[new])


def serve(port: int) -> None:
    if port:
        start_http_server(port)
