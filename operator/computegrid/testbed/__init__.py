"""The local test bed: a hub and member Kubernetes control planes run by kwok.

Public API (the CLI, the integration tests and the operator's developers use these):

- ``up(name, members=3 | fleet="national", nodes_per_member=3, workdir=None) -> FleetInfo``
- ``up_or_repair(...)``: the same, but a running fleet of the same shape is repaired in place
- ``down(name, workdir=None)``, ``status(name, workdir=None) -> list[ClusterStatus]`` (the API
  server and every component: process and health endpoint)
- ``repair(name, workdir=None) -> list[Restart]`` restarts components that exited or hang
- ``add_data_inventory(info)``: every member gets the fleet data's whole node inventory
- ``load(name, workdir=None) -> FleetInfo`` reads ``<workdir>/fleet.json`` of a running fleet
- ``stop_member(member, name)`` / ``start_member(member, name)`` for chaos tests
- ``bin_dir()`` / ``missing_binaries()``: where ``make testbed-build`` puts the binaries
"""

from computegrid.testbed.checkup import (
    RepairError,
    repair,
    start_member,
    status,
    stop_member,
    up_or_repair,
)
from computegrid.testbed.fleet import (
    DEFAULT_NAME,
    DEFAULT_NODES_PER_MEMBER,
    MANIFEST,
    SECRET_NAMESPACE,
    ClusterInfo,
    ClusterStatus,
    FleetInfo,
    add_data_inventory,
    down,
    kubectl_hints,
    load,
    load_crds,
    up,
    workdir_for,
)
from computegrid.testbed.health import ComponentHealth, log_tail
from computegrid.testbed.kube import NotReadyError, api_client
from computegrid.testbed.kwokctl import KwokctlError
from computegrid.testbed.paths import BinariesMissingError, bin_dir, missing_binaries
from computegrid.testbed.ports import FleetBusyError
from computegrid.testbed.supervise import ComponentsUnhealthyError, Restart

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_NODES_PER_MEMBER",
    "MANIFEST",
    "SECRET_NAMESPACE",
    "BinariesMissingError",
    "ClusterInfo",
    "ClusterStatus",
    "ComponentHealth",
    "ComponentsUnhealthyError",
    "FleetBusyError",
    "FleetInfo",
    "KwokctlError",
    "NotReadyError",
    "RepairError",
    "Restart",
    "add_data_inventory",
    "api_client",
    "bin_dir",
    "down",
    "kubectl_hints",
    "load",
    "load_crds",
    "log_tail",
    "missing_binaries",
    "repair",
    "start_member",
    "status",
    "stop_member",
    "up",
    "up_or_repair",
    "workdir_for",
]
