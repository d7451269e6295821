"""The built-in national fleet and latency model, loaded from the package data.

This is the only module that parses the reference YAML; everything else gets typed objects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from computegrid.api.common import (
    GPU,
    LABEL_CARBON,
    LABEL_COMPUTE_TYPE,
    LABEL_PRICE,
    LABEL_RENEWABLE,
    ComputeType,
    Region,
)
from computegrid.scheduling.latency import LatencyModel
from computegrid.scheduling.snapshot import ClusterSnapshot, NodeCapacity, PowerMix

GIB = 2**30
PODS_PER_NODE = 110  # the kubelet default max-pods


@dataclass(frozen=True, slots=True)
class Sourced:
    """A number with where it came from and how sure we are of it."""

    value: float
    source: str
    status: str


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node of the built-in fleet (illustrative sizes, see fleet.yaml)."""

    name: str
    compute_type: ComputeType
    cpu: int
    memory_gi: int
    gpu: int

    def allocatable(self) -> dict[str, float]:
        out = {"cpu": float(self.cpu), "memory": float(self.memory_gi * GIB), "pods": 110.0}
        if self.gpu:
            out[GPU] = float(self.gpu)
        return out


@dataclass(frozen=True, slots=True)
class FleetCluster:
    """One member cluster of the built-in national fleet."""

    name: str
    hub: str
    province: str
    region: Region
    location: str
    paired_with: tuple[str, ...]
    power: PowerMix
    power_sources: dict[str, Sourced]
    nodes: tuple[NodeSpec, ...]

    @property
    def compute_types(self) -> tuple[ComputeType, ...]:
        return tuple(sorted({n.compute_type for n in self.nodes}, key=list(ComputeType).index))

    def snapshot(self, scale: int = 1) -> ClusterSnapshot:
        """An idle snapshot of this cluster, its node inventory repeated ``scale`` times."""
        nodes = tuple(
            NodeCapacity(
                f"{n.name}-{i}" if scale > 1 else n.name, n.allocatable(), {}, n.compute_type
            )
            for i in range(scale)
            for n in self.nodes
        )
        return ClusterSnapshot(
            name=self.name,
            hub=self.hub,
            region=self.region,
            location=self.location,
            power=self.power,
            nodes=nodes,
            paired_with=frozenset(self.paired_with),
            labels={"computegrid.io/hub": self.hub, "computegrid.io/region": self.region.value},
        )


@dataclass(frozen=True, slots=True)
class NationalFleet:
    clusters: tuple[FleetCluster, ...]

    def by_name(self, name: str) -> FleetCluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)

    def snapshots(self, scale: int = 1) -> list[ClusterSnapshot]:
        return [c.snapshot(scale) for c in self.clusters]


def node_labels(cluster: FleetCluster, node: NodeSpec) -> dict[str, str]:
    """The ``computegrid.io/*`` labels a site operator would put on this node."""
    return {
        LABEL_COMPUTE_TYPE: node.compute_type.value,
        LABEL_RENEWABLE: f"{cluster.power.renewable_share:g}",
        LABEL_CARBON: f"{cluster.power.carbon_intensity:g}",
        LABEL_PRICE: f"{cluster.power.price_per_kwh:g}",
    }


# libyaml's parser when PyYAML was built with it: the same safe loading, 7x less CPU (the
# latency matrix, read at every operator start: 135 ms → 18 ms here).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_data(name: str) -> Any:
    """Parse one YAML file of the package data."""
    text = resources.files("computegrid.fleet_data").joinpath("data", name).read_text("utf-8")
    return yaml.load(text, Loader=_SAFE_LOADER)


@functools.cache
def load_national_fleet() -> NationalFleet:
    """The 10 clusters of the 8 hubs, sorted by name."""
    raw = read_data("fleet.yaml")
    shapes = raw["node_shapes"]
    clusters = []
    for entry in raw["clusters"]:
        nodes: list[NodeSpec] = []
        for kind, count in entry["nodes"].items():
            shape = shapes[kind]
            short = {"general": "cpu", "intelligent": "gpu", "supercomputing": "hpc"}[kind]
            nodes.extend(
                NodeSpec(f"{entry['name']}-{short}-{i}", ComputeType(kind), **shape)
                for i in range(count)
            )
        sources = {
            key: Sourced(float(v["value"]), str(v["from"]), str(v["status"]))
            for key, v in entry["power"].items()
        }
        clusters.append(
            FleetCluster(
                name=entry["name"],
                hub=entry["hub"],
                province=entry["province"],
                region=Region(entry["region"]),
                location=entry["location"],
                paired_with=tuple(entry["paired_with"]),
                power=PowerMix(
                    renewable_share=sources["renewable_share"].value,
                    carbon_intensity=sources["carbon_intensity"].value,
                    price_per_kwh=sources["price_per_kwh"].value,
                ),
                power_sources=sources,
                nodes=tuple(nodes),
            )
        )
    return NationalFleet(tuple(sorted(clusters, key=lambda c: c.name)))


@functools.cache
def load_matrix() -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str], float], float]:
    """The 17-node matrix: coordinates, RTT cells and the intra-city RTT, keys lowercased."""
    raw = read_data("latency_ms.yaml")
    coords = {n["id"].lower(): (float(n["lat"]), float(n["lon"])) for n in raw["nodes"]}
    cells = {
        (a.lower(), b.lower()): float(ms)
        for a, row in raw["rtt_ms_estimated_gc"].items()
        for b, ms in row.items()
        if a != b
    }
    intra = float(raw["meta"]["intra_city_default_rtt_ms"]["value"])
    return coords, cells, intra


@functools.cache
def load_latency_model() -> LatencyModel:
    """Matrix cells where the data has them; every other known city by the matrix's method."""
    from computegrid.fleet_data.cities import load_cities

    coords, cells, intra = load_matrix()
    every = {key: (city.lat, city.lon) for key, city in load_cities().items()}
    every.update(coords)  # the matrix's own coordinates win, so estimates agree with it
    return LatencyModel(coordinates=every, matrix=cells, intra_city_ms=intra)
