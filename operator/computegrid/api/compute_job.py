"""``ComputeJob``: the user's work, placed by computegrid on one member cluster."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

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


class ComputeJobSpec(ApiModel):
    """What the user asks for."""

    compute_type: ComputeType = Field(
        default=ComputeType.GENERAL, description="general, intelligent or supercomputing."
    )
    resources: dict[str, Quantity] = Field(
        description="Requests of each pod, e.g. {cpu: '8', memory: 32Gi, nvidia.com/gpu: '4'}.",
        min_length=1,
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
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="A PodTemplateSpec: the pod to run.",
    )
    placement: Placement = Field(
        default_factory=Placement, description="Where the job may go (optional)."
    )
    # Time-shifting (issue 9): a window lets latency-tolerant work start at a greener hour.
    timing: Timing | None = Field(
        default=None, description="Deadline and expected duration (optional): may start later."
    )

    @field_validator("resources")
    @classmethod
    def _some_request(cls, value: dict[str, str]) -> dict[str, str]:
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


class ComputeJobStatus(ApiModel):
    """Written by the operator."""

    phase: Phase | None = Field(default=None, description="Pending, Scheduled, Running, ...")
    message: str | None = Field(default=None, description="The latest word on the job.")
    placement: PlacementStatus | None = Field(default=None, description="The decision.")
    remote: RemoteRef | None = Field(default=None, description="The workload on the member.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Scheduled, Dispatched, Completed."
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
    raw = job.metadata.annotations.get(ANN_LATENCY, LatencySensitivity.MEDIUM.value)
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
