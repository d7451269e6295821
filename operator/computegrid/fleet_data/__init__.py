"""The built-in reference data: the national fleet, the latency model and the city table.

The only package that reads the YAML and CSV files under ``data/``.
"""

from computegrid.fleet_data.cities import City, UnknownCityError, load_cities, resolve_city
from computegrid.fleet_data.member_check import member_problem
from computegrid.fleet_data.national import (
    FleetCluster,
    NationalFleet,
    NodeSpec,
    Sourced,
    load_latency_model,
    load_national_fleet,
    node_labels,
)
from computegrid.fleet_data.network import (
    data_location,
    load_network_model,
    network_figures,
    resolved_job_data,
)

__all__ = [
    "City",
    "FleetCluster",
    "NationalFleet",
    "NodeSpec",
    "Sourced",
    "UnknownCityError",
    "data_location",
    "load_cities",
    "load_latency_model",
    "load_national_fleet",
    "load_network_model",
    "member_problem",
    "network_figures",
    "node_labels",
    "resolve_city",
    "resolved_job_data",
]
