"""``ComputeJob``: the user's work, placed by computegrid on one member cluster."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, JsonValue, field_validator

from computegrid.api.admission import TEMPLATE_SCHEMA
from computegrid.api.common import (
    ANN_LATENCY,
    ANN_MAX_LATENCY,
    ANN_ORIGIN,
    ApiModel,
    ComputeType,
    Condition,
    LatencySensitivity,
    Phase,
    Region,
    Toleration,
)
from computegrid.api.member_cluster import ObjectMeta
from computegrid.api.quantities import Quantity, parse_quantity
from computegrid.api.timing import Timing

MAX_PARALLELISM = 10_000
# Resource names a pod may ask for. Also bounds the CEL rules' cost: at 32 the API server
# refused the CRD (estimated cost over budget by 1.007x, measured on the v1.36 test bed).
MAX_RESOURCES = 16
# The same checks as _some_request, at kubectl apply (the pattern alone admits "-1").
RESOURCE_RULES: list[JsonValue] = [
    {
        "rule": "self.all(k, !string(self[k]).startsWith('-'))",
        "message": "spec.resources: a request must not be negative",
    },
    {
        "rule": "self.all(k, size(k) > 0 && size(k) <= 253 && !k.contains(' '))",
        "message": "spec.resources: a resource name is 1 to 253 characters without spaces",
    },
]


class LabelSelectorRequirement(ApiModel):
    """One matchExpressions entry (In, NotIn, Exists, DoesNotExist)."""

    key: str = Field(min_length=1, description="Label key.")
    operator: str = Field(
        pattern=r"^(In|NotIn|Exists|DoesNotExist)$", description="In, NotIn, Exists, DoesNotExist."
    )
    values: list[str] = Field(default_factory=list, description="Values for In and NotIn.")


class LabelSelector(ApiModel):
    """Selects member clusters by their MemberCluster labels."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="All must match.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="All must hold."
    )


class Placement(ApiModel):
    """Constraints on where the job may go; all optional."""

    cluster_selector: LabelSelector | None = Field(
        default=None, description="Only member clusters whose labels match."
    )
    allowed_regions: list[Region] | None = Field(
        default=None, min_length=1, description="Data residency: the regions the job may run in."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Member cluster taints tolerated."
    )
    # Federation (issue 10): set by a parent hub in Pinned delegation; the child places the
    # job on this member cluster or leaves it Pending saying why.
    pinned_cluster: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Run only on this member cluster (set by a parent hub, Pinned delegation).",
    )


class FailoverPolicy(StrEnum):
    """What may happen to a job whose member is lost: its delivery semantics."""

    NEVER = "Never"  # at most once: wait for the member, however long
    IF_NOT_STARTED = "IfNotStarted"  # move only if its pods never started (the default)
    ALWAYS = "Always"  # at least once: move after the grace period, started or not


class Failover(ApiModel):
    """When and whether the job moves off a member the operator cannot reach."""

    policy: FailoverPolicy = Field(
        default=FailoverPolicy.IF_NOT_STARTED,
        description="Never (at most once), IfNotStarted (default), Always (at least once).",
    )
    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds a member may be unreachable before the job moves; default: the "
        "operator's --grace-period (300 s).",
    )


# Bounds of spec.data: a job reads from a handful of places; 1 PiB is beyond any single
# job's input we know of and keeps a typo (sizeGiB in bytes) from passing.
MAX_DATA_INPUTS = 16
MAX_DATA_GIB = float(2**20)


class DataInput(ApiModel):
    """One input of the job: where it is and how big (issue 10: data that moves with the work)."""

    location: str = Field(
        min_length=1,
        max_length=253,
        description="The city holding the data (any prefecture-level city, as for the origin "
        "annotation) or the name of a member cluster.",
    )
    size_gib: float = Field(
        alias="sizeGiB",
        le=MAX_DATA_GIB,
        # Kubernetes' OpenAPI v3 takes a boolean exclusiveMinimum next to minimum (pydantic's
        # gt writes a number, which the API server refuses): > 0 at kubectl apply too; here
        # the validator below says it in words.
        json_schema_extra={"minimum": 0, "exclusiveMinimum": True},
        description="Size in GiB (2^30 bytes), above 0 and at most 1 PiB (1048576).",
    )

    @field_validator("location")
    @classmethod
    def _no_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a city or a member cluster, not be blank")
        return value

    @field_validator("size_gib")
    @classmethod
    def _above_zero(cls, value: float) -> float:
        if not value > 0:  # also NaN
            raise ValueError(f"must be above 0, got {value:g}")
        return value


class ComputeJobSpec(ApiModel):
    """What the user asks for."""

    compute_type: ComputeType = Field(
        default=ComputeType.GENERAL, description="general, intelligent or supercomputing."
    )
    resources: dict[str, Quantity] = Field(
        description="Requests of each pod, e.g. {cpu: '8', memory: 32Gi, nvidia.com/gpu: '4'}.",
        min_length=1,
        max_length=MAX_RESOURCES,
        json_schema_extra={"x-kubernetes-validations": RESOURCE_RULES},
    )
    parallelism: int = Field(
        default=1, ge=1, le=MAX_PARALLELISM, description="How many pods run at once."
    )
    completions: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARALLELISM,
        description="Successful pods needed; default parallelism.",
    )
    template: dict[str, Any] = Field(
        # Only the shape every namespace needs is schema; the pod rules depend on the
        # namespace, so they are the admission policy's (api.admission).
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, **TEMPLATE_SCHEMA},
        description="A PodTemplateSpec: the pod to run.",
    )
    placement: Placement = Field(
        default_factory=Placement, description="Where the job may go (optional)."
    )
    failover: Failover = Field(
        default_factory=Failover, description="Whether and when the job moves off a lost member."
    )
    # Time-shifting (issue 9): a window lets latency-tolerant work start at a greener hour.
    timing: Timing | None = Field(
        default=None, description="Deadline and expected duration (optional): may start later."
    )
    # Data that moves with the work (issue 10): inputs the job reads, priced per cluster.
    data: list[DataInput] = Field(
        default_factory=list,
        max_length=MAX_DATA_INPUTS,
        description="The job's inputs (optional): where each is and its size; moving them to "
        "the chosen cluster is priced in time, carbon and money.",
    )

    @field_validator("resources")
    @classmethod
    def _some_request(cls, value: dict[str, str]) -> dict[str, str]:
        if any(parse_quantity(q) < 0 for q in value.values()):
            raise ValueError("a request must not be negative")
        if all(parse_quantity(q) == 0 for q in value.values()):
            raise ValueError("at least one resource request must be above zero")
        for name in value:
            if not name or len(name) > 253 or " " in name:
                raise ValueError(f"{name!r} is not a resource name")
        return value


class PlacementAlternative(ApiModel):
    """A runner-up cluster and its score."""

    cluster: str = Field(description="Member cluster name.")
    score: float = Field(description="Weighted score in [0, 100].")


class PlacementStatus(ApiModel):
    """Where the job went and why."""

    cluster: str = Field(description="Member cluster chosen.")
    hub: str = Field(description="Its hub.")
    region: Region = Field(description="Its region.")
    latency_ms: float = Field(description="Estimated RTT from the job's origin.")
    carbon_intensity: float = Field(description="gCO2e/kWh at decision time.")
    price_per_kwh: float = Field(alias="pricePerKWh", description="CNY/kWh at decision time.")
    score: float = Field(description="Weighted score in [0, 100].")
    breakdown: dict[str, float] = Field(
        default_factory=dict, description="Score per plugin for the chosen cluster."
    )
    reasons: list[str] = Field(default_factory=list, description="Why this cluster, in words.")
    alternatives: list[PlacementAlternative] = Field(
        default_factory=list, description="The best runners-up."
    )
    nearest_cluster: str | None = Field(
        default=None, description="The feasible-or-not cluster nearest the origin."
    )
    carbon_saved_g_per_hour: float | None = Field(
        default=None, description="Estimated gCO2e saved per hour against the nearest cluster."
    )
    cost_saved_cny_per_hour: float | None = Field(
        default=None, description="Estimated CNY saved per hour against the nearest cluster."
    )
    decided_at: str | None = Field(default=None, description="RFC 3339 time of the decision.")


class RemoteRef(ApiModel):
    """The workload created on the member."""

    cluster: str = Field(description="Member cluster.")
    namespace: str = Field(description="Namespace on the member.")
    name: str = Field(description="batch/v1 Job name on the member.")
    uid: str | None = Field(default=None, description="uid of that Job.")
    attempt: int | None = Field(
        default=None, ge=1, description="Placement attempt this Job belongs to (1, 2, ...)."
    )


class StaleCopy(ApiModel):
    """A Job left on a member the job moved away from: suspended, then deleted, on return."""

    cluster: str = Field(description="Member cluster.")
    namespace: str = Field(description="Namespace on the member.")
    name: str = Field(description="batch/v1 Job name on the member.")
    attempt: int | None = Field(default=None, ge=1, description="Its placement attempt.")


class DeferralStatus(ApiModel):
    """A windowed job's plan in time (issue 9): recorded on the hub before the member is
    touched, so a restart keeps it. Times are the operator's planning clock (docs/operator.md).
    """

    cluster: str = Field(description="Member cluster planned.")
    start: str = Field(
        json_schema_extra={"format": "date-time"}, description="Planned start (RFC 3339)."
    )
    latest_start: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="deadline − expectedDuration: the last start that still meets the deadline.",
    )
    replans: int = Field(
        default=0,
        ge=0,
        description="Times the plan changed before its start for a reason of its own (a new "
        "forecast, a promise its member can no longer keep, no room at its start); at most "
        "--max-replans.",
    )
    joint_moves: int = Field(
        default=0,
        ge=0,
        description="Times the hourly joint re-plan of all Deferred jobs moved it (at most one "
        "a round; not counted in replans).",
    )
    reasons: list[str] = Field(default_factory=list, description="Why this start, in words.")
    started: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the operator released (unsuspended) the job.",
    )


class ComputeJobStatus(ApiModel):
    """Written by the operator."""

    phase: Phase | None = Field(
        default=None, description="Pending, Deferred, Scheduled, Running, ..."
    )
    message: str | None = Field(default=None, description="The latest word on the job.")
    placement: PlacementStatus | None = Field(default=None, description="The decision.")
    remote: RemoteRef | None = Field(default=None, description="The workload on the member.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Scheduled, Dispatched, Completed; Deferred and OnTime for windowed jobs.",
    )
    observed_generation: int | None = Field(default=None, description="Generation acted on.")
    start_time: str | None = Field(default=None, description="When the remote job started.")
    completion_time: str | None = Field(default=None, description="When it finished.")
    succeeded: int | None = Field(default=None, ge=0, description="Pods succeeded.")
    failed: int | None = Field(default=None, ge=0, description="Pods failed.")
    active: int | None = Field(default=None, ge=0, description="Pods running.")
    reschedules: int | None = Field(
        default=None, ge=0, description="Times moved off a lost member."
    )
    spec_digest: dict[str, str] = Field(
        default_factory=dict,
        description="A short hash per spec field as dispatched: names what changed since.",
    )
    attempts: int | None = Field(
        default=None, ge=0, description="Placements recorded so far (the last attempt number)."
    )
    deferral: DeferralStatus | None = Field(
        default=None, description="The planned start of a windowed job (phase Deferred)."
    )
    path: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Hubs the job went through and the cluster it runs on, e.g. [national, "
        "yangtze-delta, yangtze-delta-wujiang].",
    )
    stale_copies: list[StaleCopy] = Field(
        default_factory=list,
        max_length=32,
        description="Copies on members the job moved away from, to fence when they answer.",
    )


class ComputeJob(ApiModel):
    """The user's work (namespaced, short name ``cgj``: ``cj`` is CronJob's)."""

    api_version: Literal["computegrid.io/v1alpha1"] = Field(
        default="computegrid.io/v1alpha1", description="computegrid.io/v1alpha1."
    )
    kind: Literal["ComputeJob"] = Field(default="ComputeJob", description="ComputeJob.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: ComputeJobSpec = Field(description="What the user asks for.")
    status: ComputeJobStatus | None = Field(default=None, description="Written by the operator.")


class AnnotationError(ValueError):
    """A computegrid.io/* annotation with a value the product cannot use."""


def latency_sensitivity(job: ComputeJob) -> LatencySensitivity:
    """The job's latency class; ``medium`` when the annotation is absent."""
    return latency_class(job.metadata.annotations.get(ANN_LATENCY, LatencySensitivity.MEDIUM.value))


def latency_class(raw: str) -> LatencySensitivity:
    """The class the latency-sensitivity annotation's value names, case and blanks around
    aside; AnnotationError naming the annotation otherwise."""
    try:
        return LatencySensitivity(raw.strip().lower())
    except ValueError:
        raise AnnotationError(
            f"metadata.annotations[{ANN_LATENCY}]: {raw!r} is not one of high, medium, low"
        ) from None


def origin_city(job: ComputeJob) -> str:
    """The city the job's users or data are in, as written (resolved by fleet_data)."""
    raw = job.metadata.annotations.get(ANN_ORIGIN, "").strip()
    if not raw:
        raise AnnotationError(
            f"metadata.annotations[{ANN_ORIGIN}] is required: the city of the job's users, "
            "e.g. shanghai"
        )
    return raw


def max_latency_ms(job: ComputeJob) -> float | None:
    """The optional RTT budget override in milliseconds."""
    raw = job.metadata.annotations.get(ANN_MAX_LATENCY)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 < value <= 1000):
        raise AnnotationError(
            f"metadata.annotations[{ANN_MAX_LATENCY}]: {raw!r} is not a number of "
            "milliseconds in (0, 1000]"
        )
    return value
