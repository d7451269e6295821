"""``MemberCluster``: one member Kubernetes cluster standing for a compute hub's cluster."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from computegrid.api.common import (
    ApiModel,
    ComputeType,
    Condition,
    Region,
    Taint,
)
from computegrid.api.forecast import ForecastSource, ForecastStatus
from computegrid.api.quantities import Quantity

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CITY_KEY = r"^[a-z][a-z0-9_-]*$"  # the latency model's keys: lower-case pinyin
# A Hub member's clusters in the parent's view: "<member>/<child cluster>" (issue 10); "/"
# cannot occur in a MemberCluster name, so the split is unambiguous.
CHILD_SEPARATOR = "/"
# status.byComputeType[*].largestFree: the free room of at most this many nodes of a type, so
# the status stays small whatever the node count (the kubectl plugin's and a parent hub's fit
# check read them; fleet/live.py).
LARGEST_FREE = 4


class MemberType(StrEnum):
    """What the kubeconfig points at: a plain cluster, or another computegrid hub."""

    CLUSTER = "Cluster"
    HUB = "Hub"


class Delegation(StrEnum):
    """Who chooses the cluster inside a member that is itself a hub (issue 10)."""

    PINNED = "Pinned"  # this hub chooses the child's cluster; the child must run it there
    AUTONOMOUS = "Autonomous"  # this hub chooses the child hub; the child places by its policy


class SecretKeyRef(ApiModel):
    """Where the member's kubeconfig lives on the hub."""

    name: str = Field(min_length=1, max_length=253, description="Secret name.")
    namespace: str = Field(
        default="computegrid-system", max_length=63, description="Secret namespace."
    )
    key: str = Field(default="kubeconfig", min_length=1, description="Key holding the kubeconfig.")


class MemberClusterSpec(ApiModel):
    """What the site operator declares about a member cluster."""

    hub: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="National hub node, e.g. gansu."
    )
    region: Region = Field(description="east, central or west.")
    location: str = Field(
        min_length=1,
        max_length=63,
        pattern=CITY_KEY,
        description="City key of the latency model where the cluster sits, e.g. qingyang.",
    )
    kubeconfig_secret_ref: SecretKeyRef = Field(description="Secret with the member's kubeconfig.")
    paired_with: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="East cities this hub is paired with; their jobs get a pairing bonus.",
    )
    taints: list[Taint] = Field(
        default_factory=list, max_length=32, description="ComputeJobs must tolerate these."
    )
    # Federation (issue 10): a member may be another computegrid hub; its clusters are learnt
    # from its own MemberCluster statuses and it receives ComputeJobs, never Jobs.
    type: MemberType = Field(
        default=MemberType.CLUSTER, description="Cluster (default) or Hub: another computegrid hub."
    )
    delegation: Delegation = Field(
        default=Delegation.PINNED,
        description="For a Hub: Pinned (this hub picks the child's cluster) or Autonomous (the "
        "child hub places within the job's latency budget).",
    )
    # Time-shifting (issue 9): where the hourly power forecast comes from; Flat when absent.
    forecast_source: ForecastSource | None = Field(
        default=None, description="Hourly power forecast: Flat (default), Builtin or ConfigMap."
    )


class PowerStatus(ApiModel):
    """The member's power mix: allocatable-weighted mean of its nodes' labels."""

    renewable_share: float | None = Field(default=None, ge=0, le=1, description="0..1.")
    carbon_intensity: float | None = Field(default=None, ge=0, description="gCO2e/kWh.")
    price_per_kwh: float | None = Field(
        default=None, ge=0, alias="pricePerKWh", description="CNY/kWh."
    )


class TypeCapacity(ApiModel):
    """The capacity of a member's nodes of one compute type."""

    allocatable: dict[str, Quantity] = Field(
        default_factory=dict, description="Sum of the allocatable of its nodes of this type."
    )
    available: dict[str, Quantity] = Field(
        default_factory=dict, description="That minus the requests of their non-terminal pods."
    )
    node_count: int = Field(default=0, ge=0, description="Ready nodes of this type.")
    largest_free: list[dict[str, Quantity]] = Field(
        default_factory=list,
        max_length=LARGEST_FREE,
        description=f"The free room of the (at most {LARGEST_FREE}) nodes of this type with the "
        "most free, one entry per node, most free first (GPUs, then CPU, then memory): a "
        "reader checks a pod against one node's room, not the type's sum.",
    )


class MemberClusterStatus(ApiModel):
    """Written by the operator's probes."""

    conditions: list[Condition] = Field(default_factory=list, description="Ready and others.")
    allocatable: dict[str, Quantity] = Field(
        default_factory=dict, description="Sum of node allocatable."
    )
    available: dict[str, Quantity] = Field(
        default_factory=dict, description="Allocatable minus requests of non-terminal pods."
    )
    compute_types: list[ComputeType] = Field(
        default_factory=list, description="Compute types its nodes offer."
    )
    # Keyed by str, not ComputeType: a CRD schema cannot constrain map keys (no propertyNames
    # in Kubernetes' structural schemas); the operator writes ComputeType values only.
    by_compute_type: dict[str, TypeCapacity] = Field(
        default_factory=dict,
        description="Capacity per compute type (general, intelligent, supercomputing), so a "
        "reader can tell GPU room from CPU room.",
    )
    power: PowerStatus | None = Field(default=None, description="Power mix.")
    node_count: int | None = Field(default=None, ge=0, description="Ready nodes seen.")
    last_probe_time: str | None = Field(default=None, description="RFC 3339 time of last probe.")
    consecutive_failures: int | None = Field(
        default=None, ge=0, description="Failed probes in a row."
    )
    # Time-shifting (issue 9): the forecast planned on; condition ForecastCurrent says whose.
    forecast: ForecastStatus | None = Field(
        default=None, description="Hourly power forecast the operator plans on."
    )


class ObjectMeta(ApiModel):
    """The part of metadata the product reads; the API server owns the rest."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str = Field(default="", description="Object name.")
    namespace: str | None = Field(default=None, description="Namespace (namespaced kinds).")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    uid: str | None = Field(default=None, description="Server-set uid.")
    generation: int | None = Field(default=None, description="Server-set generation.")


class MemberCluster(ApiModel):
    """A member cluster registered with the hub (cluster-scoped, short name ``mc``)."""

    api_version: Literal["computegrid.io/v1alpha1"] = Field(
        default="computegrid.io/v1alpha1", description="computegrid.io/v1alpha1."
    )
    kind: Literal["MemberCluster"] = Field(default="MemberCluster", description="MemberCluster.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: MemberClusterSpec = Field(description="What the site operator declares.")
    status: MemberClusterStatus | None = Field(default=None, description="Written by the operator.")
