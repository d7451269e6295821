"""Data that moves with the work: how long, how much carbon and money a job's inputs cost to
bring to each cluster.

A job declares its inputs (``spec.data``: a place and a size). Bringing them to a cluster in
another city takes ``size / bandwidth`` between the two places, draws ``kWh per GB`` of
network electricity and costs ``CNY per GB``; data already in the cluster's city costs
nothing. The figures are a ``NetworkModel`` built by ``fleet_data`` from its sourced table
(``data/transfer.yaml``); the core only does the arithmetic, vectorised over clusters.

Inputs held in different places move in parallel (one path each), inputs in one place one
after another over that place's path: the time a cluster waits is the slowest source's sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from computegrid.scheduling.snapshot import JobData
from computegrid.scheduling.state import FleetState, FloatArray

GIB = 2**30
GB = 10**9
GB_PER_GIB = GIB / GB  # sizes are declared in GiB; energy and prices are quoted per GB


@dataclass(frozen=True, slots=True)
class Transfer:
    """Per cluster (the state's order): seconds to wait, kWh, gCO2e and CNY of moving the data.

    ``unknown`` names an input location that is neither a known city nor a member cluster;
    such inputs make every cluster infeasible (the filter says which), never an exception.
    """

    seconds: FloatArray
    kwh: FloatArray
    carbon_g: FloatArray
    cny: FloatArray
    sources: tuple[str, ...]
    unknown: str | None = None
    moved_gib: FloatArray = field(default_factory=lambda: np.zeros(0))


def source_city(location: str, state: FleetState) -> str | None:
    """The city of an input: a member cluster's city when it names one, else the city itself."""
    if location in state.index:
        return state.clusters[state.index[location]].location
    return location if state.latency.knows(location) else None


def transfer_of(data: JobData, state: FleetState) -> Transfer:
    """What moving ``data`` to each cluster costs; cached per (inputs, network) on the state."""
    key = ("transfer", data.inputs, id(data.network))

    def compute() -> Transfer:
        size = state.size
        zero = np.zeros(size)
        per_source: dict[str, float] = {}
        for item in data.inputs:
            city = source_city(item.location, state)
            if city is None:
                inf = np.full(size, np.inf)
                return Transfer(inf, zero, zero, zero, (), unknown=item.location, moved_gib=zero)
            per_source[city] = per_source.get(city, 0.0) + item.size_gib
        seconds, moved, cny = np.zeros(size), np.zeros(size), np.zeros(size)
        network = data.network
        for city, gib in per_source.items():
            gbps = np.array([network.gbps(city, c.location) for c in state.clusters])
            rate = np.array([network.price_per_gb(city, c.location) for c in state.clusters])
            away = np.isfinite(gbps)
            wait = np.zeros(size)
            wait[away] = gib * GIB * 8 / (gbps[away] * 1e9)  # GiB → bits, over Gbit/s
            seconds = np.maximum(seconds, wait)
            moved += np.where(away, gib, 0.0)
            cny += np.where(away, gib * GB_PER_GIB * rate, 0.0)
        kwh = moved * GB_PER_GIB * network.kwh_per_gb
        return Transfer(
            seconds,
            kwh,
            kwh * network.carbon_g_per_kwh,
            cny,
            tuple(sorted(per_source)),
            moved_gib=moved,
        )

    result: Transfer = state.cached(key, compute)
    return result


def size_words(gib: float) -> str:
    """``2048`` → ``2 TiB``; ``1.5`` → ``1.5 GiB``."""
    for unit, scale in (("PiB", 2**20), ("TiB", 2**10)):
        if gib >= scale:
            return f"{gib / scale:.3g} {unit}"
    return f"{gib:.3g} GiB"


def duration_words(seconds: float) -> str:
    """``2700`` → ``45 min``; ``12`` → ``12 s``; ``9000`` → ``2.5 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.3g} h"
