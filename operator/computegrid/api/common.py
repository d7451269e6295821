"""Enums, conditions and the model base shared by every API type."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "computegrid.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Annotations and labels the product reads and writes.
ANN_LATENCY = f"{GROUP}/latency-sensitivity"
ANN_ORIGIN = f"{GROUP}/origin"
ANN_MAX_LATENCY = f"{GROUP}/max-latency-ms"
ANN_BACKOFF_LIMIT = f"{GROUP}/backoff-limit"
LABEL_JOB_UID = f"{GROUP}/job-uid"
LABEL_ATTEMPT = f"{GROUP}/attempt"  # the placement attempt a member Job belongs to
LABEL_ORIGIN_CLUSTER = f"{GROUP}/origin-cluster"
LABEL_COMPUTE_TYPE = f"{GROUP}/compute-type"
# Federation (issue 10): the hubs a ComputeJob passed through, comma-separated, oldest first.
ANN_PATH = f"{GROUP}/path"
LABEL_RENEWABLE = f"{GROUP}/renewable-share"
LABEL_CARBON = f"{GROUP}/carbon-intensity"
LABEL_PRICE = f"{GROUP}/power-price"
GPU = "nvidia.com/gpu"


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        frozen=False,
    )


class Region(StrEnum):
    """Where a hub lies in the East Data, West Computing map."""

    EAST = "east"
    CENTRAL = "central"
    WEST = "west"


class LatencySensitivity(StrEnum):
    """How far from its origin a job may run: high ≤ 5 ms, medium ≤ 20 ms, low unbounded."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ComputeType(StrEnum):
    """General (CPU), intelligent (GPU/AI) or super (HPC) compute."""

    GENERAL = "general"
    INTELLIGENT = "intelligent"
    SUPERCOMPUTING = "supercomputing"


class Phase(StrEnum):
    """Where a ComputeJob is in its life."""

    PENDING = "Pending"
    DEFERRED = "Deferred"  # planned for a later start: member Job created suspended
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition without observedGeneration per condition)."""

    type: str = Field(description="Condition type, e.g. Ready, Scheduled, Dispatched, Completed.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word saying why.")
    message: str = Field(default="", description="What a person reads in kubectl describe.")
    last_transition_time: str | None = Field(
        default=None, description="RFC 3339 time of the last change of status."
    )


class Taint(ApiModel):
    """Like a node taint, on a whole member cluster."""

    key: str = Field(min_length=1, max_length=253, description="Taint key.")
    value: str = Field(default="", max_length=63, description="Taint value.")
    effect: str = Field(
        default="NoSchedule",
        pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$",
        description="NoSchedule, PreferNoSchedule or NoExecute.",
    )


class Toleration(ApiModel):
    """Lets a ComputeJob land on a member cluster with a matching taint."""

    key: str = Field(default="", max_length=253, description="Taint key; empty with Exists.")
    operator: str = Field(
        default="Equal", pattern=r"^(Equal|Exists)$", description="Equal or Exists."
    )
    value: str = Field(default="", max_length=63, description="Value to match with Equal.")
    effect: str = Field(
        default="",
        pattern=r"^(|NoSchedule|PreferNoSchedule|NoExecute)$",
        description="Effect to match; empty matches all effects.",
    )
