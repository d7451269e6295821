"""A fleet described in a file, for ``computegrid explain --fleet FILE`` and what-if studies.

clusters:
- name: gansu-qingyang
  hub: gansu
  region: west
  location: qingyang            # any city the city table knows
  province: Gansu               # optional: the simulator's hourly power model for it
  pairedWith: [shanghai]
  power: {renewableShare: 0.43, carbonIntensity: 477.2, pricePerKWh: 0.38}
  nodes:
  - {name: gpu, computeType: intelligent, count: 3,
     allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}, requested: {cpu: "8"}}

``province`` is optional and only ``computegrid sim`` reads it: the province whose hourly
shapes (clean supply by source, time-of-use windows) the simulator's power model gives the
cluster, scaled to the file's annual figures. Without it the simulator keeps the file's
figures flat, hour after hour. ``explain`` ignores it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from pydantic import Field, ValidationError

from computegrid.api.common import GPU, ApiModel, ComputeType, Region, Taint
from computegrid.api.quantities import Quantity, parse_quantity
from computegrid.fleet_data.cities import UnknownCityError, load_cities, resolve_city
from computegrid.fleet_data.inputs import InputError, read_documents
from computegrid.fleet_data.national import GIB, FleetCluster, NodeSpec, Sourced
from computegrid.scheduling.snapshot import ClusterSnapshot, ClusterTaint, NodeCapacity, PowerMix


class NodeGroup(ApiModel):
    name: str = Field(min_length=1, description="Node name (suffixed -0, -1, ... with count).")
    compute_type: ComputeType = Field(default=ComputeType.GENERAL, description="Compute type.")
    count: int = Field(default=1, ge=1, le=10_000, description="How many such nodes.")
    allocatable: dict[str, Quantity] = Field(description="Node allocatable.")
    requested: dict[str, Quantity] = Field(default_factory=dict, description="Already requested.")


class PowerFigures(ApiModel):
    renewable_share: float = Field(ge=0, le=1, description="0..1.")
    carbon_intensity: float = Field(ge=0, description="gCO2e/kWh.")
    price_per_kwh: float = Field(ge=0, alias="pricePerKWh", description="CNY/kWh.")


class FleetFileCluster(ApiModel):
    name: str = Field(min_length=1, max_length=63, description="Cluster name.")
    hub: str = Field(min_length=1, description="Hub.")
    region: Region = Field(description="Region.")
    location: str = Field(min_length=1, description="City.")
    province: str | None = Field(
        default=None,
        min_length=1,
        description="Province for the simulator's hourly power model (optional; else flat).",
    )
    ready: bool = Field(default=True, description="Ready or not.")
    paired_with: list[str] = Field(default_factory=list, description="Paired cities.")
    labels: dict[str, str] = Field(default_factory=dict, description="MemberCluster labels.")
    taints: list[Taint] = Field(default_factory=list, description="Cluster taints.")
    power: PowerFigures = Field(description="Power mix.")
    nodes: list[NodeGroup] = Field(min_length=1, description="Node groups.")


class FleetFile(ApiModel):
    clusters: list[FleetFileCluster] = Field(min_length=1, description="The clusters.")


def _amounts(quantities: dict[str, str]) -> dict[str, float]:
    return {name: float(parse_quantity(q)) for name, q in quantities.items()}


def _allocatable(quantities: dict[str, str]) -> dict[str, float]:
    """Node allocatable; ``pods`` defaults to the kubelet's 110 as on a real node."""
    return {"pods": 110.0, **_amounts(quantities)}


def _city(name: str, field: str) -> str:
    try:
        return resolve_city(name).key
    except UnknownCityError as exc:
        raise InputError(f"{field}: {exc}") from None


def parse_fleet_file(path: Path) -> FleetFile:
    """The validated file; InputError names the file and the bad field."""
    documents = read_documents(path)
    try:
        return FleetFile.model_validate(documents[0])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InputError(f"{path}: {where}: {error['msg']}") from None


def _nodes(c: FleetFileCluster) -> Iterator[tuple[str, NodeGroup, dict[str, float]]]:
    """(node name, its group, its allocatable) for every node a cluster's groups expand to."""
    for g in c.nodes:
        allocatable = _allocatable(g.allocatable)
        for k in range(g.count):
            yield (
                (f"{c.name}-{g.name}-{k}" if g.count > 1 else f"{c.name}-{g.name}"),
                g,
                allocatable,
            )


def _place(c: FleetFileCluster, i: int, path: Path) -> tuple[str, tuple[str, ...]]:
    """The cluster's city key and paired city keys; InputError names the field."""
    where = f"{path}: clusters.{i}"
    paired = tuple(_city(p, f"{where}.pairedWith") for p in c.paired_with)
    return _city(c.location, f"{where}.location"), paired


def _power(c: FleetFileCluster) -> PowerMix:
    return PowerMix(c.power.renewable_share, c.power.carbon_intensity, c.power.price_per_kwh)


def _province(c: FleetFileCluster, i: int, path: Path, known: Collection[str]) -> str:
    """The cluster's province as ``known`` spells it (case folded), "" if the file has none."""
    if c.province is None:
        return ""
    by_folded = {p.casefold(): p for p in known}
    match = by_folded.get(c.province.strip().casefold())
    if match is None:
        raise InputError(
            f"{path}: clusters.{i}.province: {c.province!r} is not one of "
            f"{', '.join(sorted(known))} (leave it out for flat power curves)"
        )
    return match


def load_fleet_clusters(path: Path, provinces: Collection[str] | None = None) -> list[FleetCluster]:
    """The file's clusters in the shape of the built-in fleet, idle, for the simulator.

    ``province`` is the file's (spelt as in ``provinces``, the ones the caller can model;
    default every province of the city table), or "" where the file gives none; a province
    outside ``provinces`` is an InputError naming ``clusters.<i>.province``. Every power
    figure is marked ``status: given`` with the file as its source, so none counts as a
    cluster's own contracted green supply. ``requested``, ``ready``, labels and taints are
    what ``explain`` reads; a replay starts from an idle fleet without them.
    """
    known = provinces if provinces is not None else {c.province for c in load_cities().values()}
    out = []
    for i, c in enumerate(parse_fleet_file(path).clusters):
        location, paired = _place(c, i, path)
        province = _province(c, i, path, known)
        power = _power(c)
        out.append(
            FleetCluster(
                name=c.name,
                hub=c.hub,
                province=province,
                region=c.region,
                location=location,
                paired_with=paired,
                power=power,
                power_sources={
                    key: Sourced(getattr(power, key), f"fleet file {path}", "given")
                    for key in ("carbon_intensity", "renewable_share", "price_per_kwh")
                },
                nodes=tuple(
                    NodeSpec(
                        name,
                        g.compute_type,
                        cpu=int(alloc.get("cpu", 0.0)),
                        memory_gi=int(alloc.get("memory", 0.0) // GIB),
                        gpu=int(alloc.get(GPU, 0.0)),
                    )
                    for name, g, alloc in _nodes(c)
                ),
            )
        )
    return sorted(out, key=lambda c: c.name)


def load_fleet_file(path: Path) -> list[ClusterSnapshot]:
    """Snapshots of the clusters a fleet file describes; InputError names the bad field."""
    snapshots = []
    for i, c in enumerate(parse_fleet_file(path).clusters):
        location, paired = _place(c, i, path)
        snapshots.append(
            ClusterSnapshot(
                name=c.name,
                hub=c.hub,
                region=c.region,
                location=location,
                power=_power(c),
                nodes=tuple(
                    NodeCapacity(name, alloc, _amounts(g.requested), g.compute_type)
                    for name, g, alloc in _nodes(c)
                ),
                ready=c.ready,
                not_ready_reason="" if c.ready else "marked not ready in the fleet file",
                taints=tuple(ClusterTaint(t.key, t.value, t.effect) for t in c.taints),
                labels=c.labels,
                paired_with=frozenset(paired),
            )
        )
    return snapshots
