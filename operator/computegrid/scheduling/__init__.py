"""The pure scheduling core: no I/O, no Kubernetes, no clock; decisions are deterministic.

Inputs are plain data (a JobRequest, ClusterSnapshots, a LatencyModel, a Policy); the output
is a Decision with a score breakdown, or a Diagnosis naming each cluster's rejecting filter.
"""

from computegrid.scheduling.framework import Scheduler, schedule_many
from computegrid.scheduling.latency import LatencyModel, estimated_rtt_ms, great_circle_km
from computegrid.scheduling.policy import DEFAULT_POLICY, DEFAULT_WEIGHTS, Policy
from computegrid.scheduling.report import placement_status
from computegrid.scheduling.request import JobError, job_data, to_request, to_window
from computegrid.scheduling.result import Decision, Diagnosis, Result, Verdict
from computegrid.scheduling.snapshot import (
    LATENCY_BUDGET_MS,
    ClusterSelector,
    ClusterSnapshot,
    ClusterTaint,
    DataInput,
    JobData,
    JobRequest,
    JobToleration,
    NetworkModel,
    NodeCapacity,
    PowerMix,
    SelectorRequirement,
)
from computegrid.scheduling.state import FleetState
from computegrid.scheduling.timeshift import (
    FleetForecast,
    Reservation,
    ReservationBook,
    TimedDecision,
    TimeScheduler,
    Window,
    window_for,
)

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_WEIGHTS",
    "LATENCY_BUDGET_MS",
    "ClusterSelector",
    "ClusterSnapshot",
    "ClusterTaint",
    "DataInput",
    "Decision",
    "Diagnosis",
    "FleetForecast",
    "FleetState",
    "JobData",
    "JobError",
    "JobRequest",
    "JobToleration",
    "LatencyModel",
    "NetworkModel",
    "NodeCapacity",
    "Policy",
    "PowerMix",
    "Reservation",
    "ReservationBook",
    "Result",
    "Scheduler",
    "SelectorRequirement",
    "TimeScheduler",
    "TimedDecision",
    "Verdict",
    "Window",
    "estimated_rtt_ms",
    "great_circle_km",
    "job_data",
    "placement_status",
    "schedule_many",
    "to_request",
    "to_window",
    "window_for",
]
