"""The network model for data that moves with the work, from ``data/transfer.yaml``.

Also resolves the places a job's ``spec.data`` names: a city, in any spelling the origin
annotation accepts, becomes its key; anything else is taken as a member cluster's name for
the core to look up (a cluster that does not exist leaves the job Pending, naming the input).
"""

from __future__ import annotations

import functools

from computegrid.api import ComputeJob
from computegrid.fleet_data.cities import UnknownCityError, load_cities, resolve_city
from computegrid.fleet_data.national import Sourced, read_data
from computegrid.scheduling import JobData, NetworkModel, job_data


@functools.cache
def network_figures() -> dict[str, Sourced]:
    """The scalar figures the model uses, each with its source and status (for docs and tests)."""
    raw = read_data("transfer.yaml")
    gbps = raw["throughput_gbps"]

    def sourced(entry: dict[str, object], default_source: str) -> Sourced:
        return Sourced(
            float(str(entry["value"])),
            str(entry.get("source", default_source)),
            str(entry["status"]),
        )

    derived = "transfer.yaml: derivation given"
    return {
        "inter_hub_gbps": sourced(gbps["inter_hub"], derived),
        "intra_hub_gbps": sourced(gbps["intra_hub"], derived),
        "off_hub_gbps": sourced(gbps["off_hub"], derived),
        "kwh_per_gb": sourced(raw["energy_kwh_per_gb"]["used"], derived),
        "carbon_g_per_kwh": sourced(raw["carbon_g_per_kwh"], derived),
        "cny_per_gb": sourced(raw["price_cny_per_gb"], derived),
        "intra_hub_cny_per_gb": sourced(raw["intra_hub_price_cny_per_gb"], derived),
    }


@functools.cache
def load_network_model() -> NetworkModel:
    """Hub of every city in the table, the hub-pair throughput table and the per-GB figures."""
    raw = read_data("transfer.yaml")
    hubs_of_province = {
        province: hub
        for hub, provinces in raw["hub_provinces"].items()
        if isinstance(provinces, list)
        for province in provinces
    }
    hub_of = {
        key: hubs_of_province[city.province]
        for key, city in load_cities().items()
        if city.province in hubs_of_province
    }
    cells = {
        (a, b): float(gbps)
        for a, row in raw["throughput_gbps"]["hub_pairs"]["cells"].items()
        for b, gbps in row.items()
        if a != b
    }
    figures = network_figures()
    return NetworkModel(
        hub_of=hub_of,
        hub_gbps=cells,
        intra_hub_gbps=figures["intra_hub_gbps"].value,
        off_hub_gbps=figures["off_hub_gbps"].value,
        kwh_per_gb=figures["kwh_per_gb"].value,
        carbon_g_per_kwh=figures["carbon_g_per_kwh"].value,
        cny_per_gb=figures["cny_per_gb"].value,
        intra_hub_cny_per_gb=figures["intra_hub_cny_per_gb"].value,
    )


def data_location(raw: str) -> str:
    """A city's key when ``raw`` names a city; else ``raw`` itself (a member cluster's name)."""
    try:
        return resolve_city(raw).key
    except UnknownCityError:
        return raw.strip()


def resolved_job_data(job: ComputeJob, now_s: float | None = None) -> JobData | None:
    """The core's ``JobData`` for the job's ``spec.data`` on the built-in network model."""
    if not job.spec.data:
        return None
    places = [data_location(item.location) for item in job.spec.data]
    return job_data(job, places, load_network_model(), now_s)
