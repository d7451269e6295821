"""The local test bed: a hub and member Kubernetes control planes run by kwok.

Public API (the CLI, the integration tests and the operator's developers use these):

- ``up(name, members=3 | fleet="national", nodes_per_member=3, workdir=None) -> FleetInfo``
- ``down(name, workdir=None)``, ``status(name, workdir=None) -> list[ClusterStatus]``
- ``load(name, workdir=None) -> FleetInfo`` reads ``<workdir>/fleet.json`` of a running fleet
- ``stop_member(member, name)`` / ``start_member(member, name)`` for chaos tests
- ``bin_dir()`` / ``missing_binaries()``: where ``make testbed-build`` puts the binaries
"""

from computegrid.testbed.fleet import (
    DEFAULT_NAME,
    DEFAULT_NODES_PER_MEMBER,
    MANIFEST,
    SECRET_NAMESPACE,
    ClusterInfo,
    ClusterStatus,
    FleetInfo,
    down,
    kubectl_hints,
    load,
    load_crds,
    start_member,
    status,
    stop_member,
    up,
    workdir_for,
)
from computegrid.testbed.kube import NotReadyError, api_client
from computegrid.testbed.kwokctl import KwokctlError
from computegrid.testbed.paths import BinariesMissingError, bin_dir, missing_binaries

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_NODES_PER_MEMBER",
    "MANIFEST",
    "SECRET_NAMESPACE",
    "BinariesMissingError",
    "ClusterInfo",
    "ClusterStatus",
    "FleetInfo",
    "KwokctlError",
    "NotReadyError",
    "api_client",
    "bin_dir",
    "down",
    "kubectl_hints",
    "load",
    "load_crds",
    "missing_binaries",
    "start_member",
    "status",
    "stop_member",
    "up",
    "workdir_for",
]
