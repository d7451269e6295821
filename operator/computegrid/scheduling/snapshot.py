"""The scheduling core's inputs: plain, immutable data with no Kubernetes types in it.

Resources are in canonical units: ``cpu`` in cores, ``memory`` in bytes, anything else
(``nvidia.com/gpu``) as a count. The operator builds snapshots from member clusters; the
simulator, ``explain`` and the benchmark build them from the fleet data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from computegrid.api.common import ComputeType, LatencySensitivity, Region

#: The RTT budget of each latency class, in milliseconds (None: unbounded).
LATENCY_BUDGET_MS: Mapping[LatencySensitivity, float | None] = {
    LatencySensitivity.HIGH: 5.0,
    LatencySensitivity.MEDIUM: 20.0,
    LatencySensitivity.LOW: None,
}


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """One node: what it can hold and what its non-terminal pods already request."""

    name: str
    allocatable: Mapping[str, float]
    requested: Mapping[str, float] = field(default_factory=dict)
    compute_type: ComputeType = ComputeType.GENERAL

    def free(self, resource: str) -> float:
        return self.allocatable.get(resource, 0.0) - self.requested.get(resource, 0.0)


@dataclass(frozen=True, slots=True)
class PowerMix:
    """A cluster's electricity: renewable share 0..1, gCO2e/kWh, CNY/kWh."""

    renewable_share: float
    carbon_intensity: float
    price_per_kwh: float


@dataclass(frozen=True, slots=True)
class ClusterTaint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True)
class JobToleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: ClusterTaint) -> bool:
        """Kubernetes semantics: empty key with Exists tolerates everything."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # NotIn


@dataclass(frozen=True, slots=True)
class ClusterSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            req.matches(labels) for req in self.match_expressions
        )


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """What the core knows about one member cluster at decision time."""

    name: str
    hub: str
    region: Region
    location: str
    power: PowerMix
    nodes: tuple[NodeCapacity, ...]
    ready: bool = True
    not_ready_reason: str = ""
    taints: tuple[ClusterTaint, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    paired_with: frozenset[str] = frozenset()

    @property
    def compute_types(self) -> frozenset[ComputeType]:
        return frozenset(node.compute_type for node in self.nodes)


@dataclass(frozen=True, slots=True)
class DataInput:
    """One input of a job: where it is (a city key, or a member cluster's name) and its size."""

    location: str
    size_gib: float


@dataclass(frozen=True)
class NetworkModel:
    """Per-job bulk throughput between places, and the energy, carbon and price of a GB moved.

    ``hub_of`` maps a city key to the national hub whose provinces contain it; a city in no
    hub's provinces moves data at ``off_hub_gbps``. ``hub_gbps`` holds one figure per pair of
    hubs (either order); two cities of one hub use ``intra_hub_gbps``.
    """

    hub_of: Mapping[str, str]
    hub_gbps: Mapping[tuple[str, str], float]
    intra_hub_gbps: float
    off_hub_gbps: float
    kwh_per_gb: float
    carbon_g_per_kwh: float  # the grid intensity charged to network electricity
    cny_per_gb: float  # between hubs, and from or to a city outside every hub
    intra_hub_cny_per_gb: float = 0.0  # between two cities of one hub

    def same_hub(self, a: str, b: str) -> bool:
        hub = self.hub_of.get(a)
        return hub is not None and hub == self.hub_of.get(b)

    def price_per_gb(self, a: str, b: str) -> float:
        """CNY per GB from ``a`` to ``b``: nothing within a city."""
        if a == b:
            return 0.0
        return self.intra_hub_cny_per_gb if self.same_hub(a, b) else self.cny_per_gb

    def gbps(self, a: str, b: str) -> float:
        """Throughput from city ``a`` to city ``b`` (infinite within one city: nothing moves)."""
        if a == b:
            return float("inf")
        hub_a, hub_b = self.hub_of.get(a), self.hub_of.get(b)
        if hub_a is None or hub_b is None:
            return self.off_hub_gbps
        if hub_a == hub_b:
            return self.intra_hub_gbps
        pair = self.hub_gbps.get((hub_a, hub_b)) or self.hub_gbps.get((hub_b, hub_a))
        return self.off_hub_gbps if pair is None else pair


@dataclass(frozen=True, slots=True)
class JobData:
    """A job's inputs and what the core needs to price moving them.

    ``run_hours`` is the job's expected duration (``spec.timing``), None when it declares
    none. ``transfer_budget_s`` is how long the transfer may take before the job can no longer
    meet its deadline (latest start − the time the request was made), None without a deadline.
    """

    inputs: tuple[DataInput, ...]
    network: NetworkModel
    run_hours: float | None = None
    transfer_budget_s: float | None = None

    @property
    def total_gib(self) -> float:
        return sum(i.size_gib for i in self.inputs)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job as the core sees it: per-pod requests times parallelism, and where it may go."""

    name: str
    origin: str  # a city key of the latency model, already resolved
    pod_resources: Mapping[str, float]
    parallelism: int = 1
    compute_type: ComputeType = ComputeType.GENERAL
    sensitivity: LatencySensitivity = LatencySensitivity.MEDIUM
    max_latency_ms: float | None = None
    allowed_regions: frozenset[Region] | None = None
    selector: ClusterSelector | None = None
    tolerations: tuple[JobToleration, ...] = ()
    pinned_cluster: str | None = None  # a parent hub chose this cluster (Pinned delegation)
    data: JobData | None = None  # inputs to bring to the cluster (spec.data); None: none

    @property
    def latency_budget_ms(self) -> float | None:
        """The override when given, else the class budget."""
        if self.max_latency_ms is not None:
            return self.max_latency_ms
        return LATENCY_BUDGET_MS[self.sensitivity]
