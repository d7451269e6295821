"""A fleet of kwok clusters: one hub plus one member per national compute-hub cluster.

Why: the operator schedules ComputeJobs from a hub onto member clusters, and its integration
tests need real API servers, a real scheduler and Jobs that really finish. kwok's binary
runtime gives that in seconds per cluster with fake nodes, so a fleet is: the hub (etcd,
apiserver, controller-manager; the CRDs and one kubeconfig Secret per member) and members
(the full set) whose Nodes carry the capacity and ``computegrid.io/*`` labels of the national
fleet data. Everything a caller needs later (kubeconfigs, ports, servers) is written to
``<workdir>/fleet.json`` so the operator and tests find a running fleet without guessing.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from computegrid.fleet_data import FleetCluster, NodeSpec, load_national_fleet, node_labels
from computegrid.testbed import health, kube, kwokctl, ports, supervise
from computegrid.testbed.paths import (
    ToolEnv,
    fleets_root,
    repo_root,
    require_binaries,
    versions,
)

DEFAULT_NAME = "computegrid"
DEFAULT_NODES_PER_MEMBER = 3
SECRET_NAMESPACE = "computegrid-system"
MANIFEST = "fleet.json"
HUB = "hub"
CARBON_LABEL = "computegrid.io/carbon-intensity"
PODS_PER_NODE = "110"
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterInfo:
    """One cluster of a fleet, as written to the manifest."""

    name: str  # "hub" or the fleet-data cluster name, e.g. "gansu-qingyang"
    role: str  # "hub" | "member"
    kwok_cluster: str  # kwokctl's --name, e.g. "computegrid-gansu-qingyang"
    kubeconfig: str  # absolute path; its server is https://127.0.0.1:<port>
    server: str
    ports: dict[str, int]
    hub: str | None = None
    region: str | None = None
    location: str | None = None
    nodes: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0


@dataclass(frozen=True)
class FleetInfo:
    """A running fleet: what ``up`` returns and ``fleet.json`` holds."""

    name: str
    workdir: str
    bin_dir: str
    kubernetes_version: str
    secret_namespace: str
    hub: ClusterInfo
    members: list[ClusterInfo]
    startup_seconds: float

    @property
    def manifest_path(self) -> Path:
        return Path(self.workdir) / MANIFEST

    @property
    def clusters(self) -> list[ClusterInfo]:
        return [self.hub, *self.members]

    def member(self, name: str) -> ClusterInfo:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"fleet {self.name!r} has no member {name!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FleetInfo:
        raw = json.loads(text)
        hub = ClusterInfo(**raw.pop("hub"))
        members = [ClusterInfo(**m) for m in raw.pop("members")]
        return cls(hub=hub, members=members, **raw)


@dataclass(frozen=True)
class ClusterStatus:
    """One cluster now: its API server's answer and every component's process and health."""

    cluster: ClusterInfo
    ready: bool  # the API server answers /readyz
    version: str | None
    components: tuple[health.ComponentHealth, ...] = ()

    @property
    def failing(self) -> list[health.ComponentHealth]:
        return [c for c in self.components if not c.ok]

    @property
    def healthy(self) -> bool:
        return self.ready and bool(self.components) and not self.failing

    def to_dict(self) -> dict[str, Any]:
        c = self.cluster
        return {
            "name": c.name,
            "role": c.role,
            "kwok_cluster": c.kwok_cluster,
            "server": c.server,
            "kubeconfig": c.kubeconfig,
            "ready": self.ready,
            "version": self.version,
            "healthy": self.healthy,
            "components": [item.to_dict() for item in self.components],
        }


def workdir_for(name: str, workdir: Path | str | None = None) -> Path:
    """``workdir`` if given, else ``<cache>/fleets/<name>``."""
    return Path(workdir) if workdir is not None else fleets_root() / name


def load(name: str = DEFAULT_NAME, workdir: Path | str | None = None) -> FleetInfo:
    """The manifest of a fleet started by ``up``; FileNotFoundError when there is none."""
    path = workdir_for(name, workdir) / MANIFEST
    return FleetInfo.from_json(path.read_text(encoding="utf-8"))


def _tool_env(work: Path) -> ToolEnv:
    return ToolEnv(bin_dir=require_binaries(), kwok_workdir=work / "kwok")


def _stages_yaml() -> str:
    root = repo_root()
    if root is None:
        raise FileNotFoundError("deploy/testbed/stages.yaml not found: run from a checkout")
    return (root / "deploy" / "testbed" / "stages.yaml").read_text(encoding="utf-8")


def load_crds(crds_dir: Path | None = None) -> list[dict[str, Any]]:
    """The CRDs of ``crds/*.yaml``; generated from computegrid.api when that folder is empty."""
    folder = crds_dir
    if folder is None:
        root = repo_root()
        folder = root / "crds" if root is not None else None
    crds: list[dict[str, Any]] = []
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    crds.append(doc)
    if not crds and crds_dir is None:
        from computegrid.api.crdgen import all_crds

        crds = list(all_crds().values())
    return crds


def _select_members(
    members: int | None, fleet: str | None, names: Sequence[str] | None = None
) -> list[FleetCluster]:
    clusters = list(load_national_fleet().clusters)
    if names is not None:  # by name; none at all is a hub alone (a federation's top)
        known = {c.name: c for c in clusters}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown cluster {unknown[0]!r}; known: {', '.join(known)}")
        return [known[n] for n in names]
    if fleet is not None:
        if fleet != "national":
            raise ValueError(f"unknown fleet {fleet!r}: the only built-in fleet is 'national'")
        return clusters
    count = 3 if members is None else members
    if not 1 <= count <= len(clusters):
        raise ValueError(f"members must be between 1 and {len(clusters)}, got {count}")
    return clusters[:count]


def _pick_nodes(cluster: FleetCluster, per_member: int) -> list[tuple[str, NodeSpec]]:
    """``per_member`` (name, spec) pairs, compute types taken in turn so that even two or
    three nodes show both CPU and GPU nodes; specs are reused (suffixed) past the data's."""
    by_type: dict[str, list[NodeSpec]] = {}
    for spec in cluster.nodes:
        by_type.setdefault(str(spec.compute_type), []).append(spec)
    order: list[NodeSpec] = []
    queues = list(by_type.values())
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    picked = []
    for i in range(per_member):
        spec = order[i % len(order)]
        rounds = i // len(order)
        picked.append((spec.name if rounds == 0 else f"{spec.name}-r{rounds}", spec))
    return picked


def _nodes_for(cluster: FleetCluster, per_member: int) -> list[dict[str, Any]]:
    """Node bodies carrying the fleet data's allocatable resources and labels."""
    bodies = []
    for name, spec in _pick_nodes(cluster, per_member):
        allocatable = {
            "cpu": str(spec.cpu),
            "memory": f"{spec.memory_gi}Gi",
            "pods": PODS_PER_NODE,
        }
        if spec.gpu:
            allocatable["nvidia.com/gpu"] = str(spec.gpu)
        bodies.append(kube.node_body(name, dict(node_labels(cluster, spec)), allocatable))
    return bodies


def add_data_inventory(info: FleetInfo) -> int:
    """Give every member the fleet data's whole node inventory (``up`` starts
    ``nodes_per_member`` of them), so placements see the data's capacity, as ``computegrid
    explain`` does. Nodes already there are kept (same names); returns how many were added."""
    national = load_national_fleet()
    added = 0
    for member in info.members:
        data = national.by_name(member.name)
        have = set(member.nodes)
        bodies = [b for b in _nodes_for(data, len(data.nodes)) if b["metadata"]["name"] not in have]
        if bodies:
            api = kube.api_client(Path(member.kubeconfig))
            try:
                kube.create_nodes(api, bodies)  # 409 (made by an earlier call) is fine
            finally:
                api.close()
        added += len(bodies)
    return added


def _server_of(kubeconfig: Path) -> str:
    doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    return str(doc["clusters"][0]["cluster"]["server"])


def up(
    name: str = DEFAULT_NAME,
    members: int | None = None,
    *,
    fleet: str | None = None,
    nodes_per_member: int = DEFAULT_NODES_PER_MEMBER,
    workdir: Path | str | None = None,
    crds_dir: Path | None = None,
    parallel: int = 4,
    log: Any = None,
    clusters: Sequence[str] | None = None,
) -> FleetInfo:
    """Start a hub and ``members`` member clusters (or the whole ``fleet="national"``).

    An existing fleet of the same name and work dir is torn down first: kwokctl would reuse
    a stale config otherwise (``checkup.up_or_repair`` keeps a matching one instead). Every
    component is waited for, and one that exits during start-up is restarted (up to
    ``supervise.START_ATTEMPTS`` times, its log tail printed). Returns the manifest, also
    written to ``<workdir>/fleet.json``. ``log`` is an optional ``print``-like callable for
    progress lines. ``clusters`` picks members by name instead (``[]``: the hub alone).
    """
    say = log or (lambda *_: None)
    if not _NAME.match(name):
        raise ValueError(f"fleet name {name!r}: lowercase letters, digits, '-'; up to 20")
    if not 1 <= nodes_per_member <= 50:
        raise ValueError(f"nodes per member must be between 1 and 50, got {nodes_per_member}")
    chosen = _select_members(members, fleet, clusters)
    work = workdir_for(name, workdir).resolve()
    env = _tool_env(work)
    stages = _stages_yaml()
    crds = load_crds(crds_dir)
    with ports.fleet_lock(name, work):
        _check_owner(name, work)
        if (work / MANIFEST).exists() or (work / "kwok" / "clusters").exists():
            say(f"fleet {name}: tearing down the previous one in {work}")
            _teardown(work)
        work.mkdir(parents=True, exist_ok=True)
        try:
            info = _start(name, chosen, work, env, stages, crds, nodes_per_member, parallel, say)
        except BaseException:
            say(f"fleet {name}: start failed; removing what was started (logs: {work / 'logs'})")
            _teardown(work, keep_logs=True)
            raise
    say(f"fleet {name}: ready in {info.startup_seconds:.1f}s; manifest {info.manifest_path}")
    return info


def _check_owner(name: str, work: Path) -> None:
    """Two fleets never share a folder: refuse one holding another fleet's manifest or ports."""
    manifest = work / MANIFEST
    owner = ports.owner(work)
    if manifest.exists():
        owner = json.loads(manifest.read_text(encoding="utf-8")).get("name")
    if owner is not None and owner != name:
        raise ValueError(
            f"workdir {work} holds fleet {owner!r}: take it down first or use another one"
        )


def _start(
    name: str,
    chosen: list[FleetCluster],
    work: Path,
    env: ToolEnv,
    stages: str,
    crds: list[dict[str, Any]],
    nodes_per_member: int,
    parallel: int,
    say: Any,
) -> FleetInfo:
    """Create every cluster, then the nodes, CRDs and Secrets; write the manifest."""
    started = time.monotonic()

    specs = [
        kwokctl.ClusterSpec(f"{name}-{HUB}", {}, kwokctl.HUB_DISABLED),
        *(kwokctl.ClusterSpec(f"{name}-{c.name}", {}) for c in chosen),
    ]
    port_sets = kwokctl.port_sets(len(specs), name, work)
    specs = [
        kwokctl.ClusterSpec(s.cluster, p, s.disabled) for s, p in zip(specs, port_sets, strict=True)
    ]

    def create(spec: kwokctl.ClusterSpec) -> float:
        config = work / "configs" / f"{spec.cluster}.yaml"
        kwokctl.write_config(config, spec, env.bin_dir, stages)
        log = work / "logs" / f"{spec.cluster}.log"
        began = time.monotonic()
        kwokctl.create(env, spec, config, log)
        kubeconfig = kwokctl.kubeconfig_path(env, spec.cluster)
        restarts = supervise.settle(env, spec.cluster, spec.ports, kubeconfig, log, say=say)
        seconds = time.monotonic() - began
        again = f" ({len(restarts)} restarts)" if restarts else ""
        say(f"  {spec.cluster}: every component healthy in {seconds:.1f}s{again}")
        return seconds

    say(f"fleet {name}: starting hub + {len(chosen)} members in {work}")
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        created = list(pool.map(create, specs))

    hub_spec, member_specs = specs[0], specs[1:]
    hub_kc = kwokctl.kubeconfig_path(env, hub_spec.cluster)
    hub_api = kube.api_client(hub_kc)
    member_infos: list[ClusterInfo] = []
    try:
        kube.wait_for(lambda: kube.server_version(hub_api), "hub API server", 60)
        kube.ensure_namespace(hub_api, SECRET_NAMESPACE)
        if crds:
            names = kube.apply_crds(hub_api, crds)
            say(f"  hub: CRDs {', '.join(names)}")

        def setup_member(item: tuple[FleetCluster, kwokctl.ClusterSpec, float]) -> ClusterInfo:
            cluster, spec, seconds = item
            kc = kwokctl.kubeconfig_path(env, spec.cluster)
            api = kube.api_client(kc)
            try:
                bodies = _nodes_for(cluster, nodes_per_member)
                kube.wait_for(lambda: kube.server_version(api), f"{spec.cluster} API", 60)
                kube.create_nodes(api, bodies)
                want = {b["metadata"]["name"] for b in bodies}
                kube.wait_for(
                    lambda: True if want <= kube.ready_nodes(api) else None,
                    f"{spec.cluster} nodes Ready",
                    90,
                )
            finally:
                api.close()
            kube.put_secret(
                hub_api,
                SECRET_NAMESPACE,
                cluster.name,
                {"kubeconfig": kube.inline_kubeconfig(kc)},
                {"computegrid.io/fleet": name, "computegrid.io/member": cluster.name},
            )
            return ClusterInfo(
                name=cluster.name,
                role="member",
                kwok_cluster=spec.cluster,
                kubeconfig=str(kc),
                server=_server_of(kc),
                ports=spec.ports,
                hub=str(cluster.hub),
                region=str(getattr(cluster.region, "value", cluster.region)),
                location=str(cluster.location),
                nodes=sorted(want),
                startup_seconds=round(seconds, 1),
            )

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            member_infos = list(
                pool.map(setup_member, zip(chosen, member_specs, created[1:], strict=True))
            )
    finally:
        hub_api.close()

    info = FleetInfo(
        name=name,
        workdir=str(work),
        bin_dir=str(env.bin_dir),
        kubernetes_version=versions()["K8S_VERSION"],
        secret_namespace=SECRET_NAMESPACE,
        hub=ClusterInfo(
            name=HUB,
            role="hub",
            kwok_cluster=hub_spec.cluster,
            kubeconfig=str(hub_kc),
            server=_server_of(hub_kc),
            ports=hub_spec.ports,
            startup_seconds=round(created[0], 1),
        ),
        members=member_infos,
        startup_seconds=round(time.monotonic() - started, 1),
    )
    info.manifest_path.write_text(info.to_json(), encoding="utf-8")
    return info


def _known_clusters(work: Path) -> list[str]:
    """kwok clusters of this fleet: from the manifest and from kwok's own work dir."""
    found: list[str] = []
    manifest = work / MANIFEST
    if manifest.exists():
        found += [c.kwok_cluster for c in FleetInfo.from_json(manifest.read_text()).clusters]
    clusters_dir = work / "kwok" / "clusters"
    if clusters_dir.is_dir():
        found += [p.name for p in sorted(clusters_dir.iterdir()) if p.is_dir()]
    return list(dict.fromkeys(found))


def down(
    name: str = DEFAULT_NAME, workdir: Path | str | None = None, *, keep_logs: bool = False
) -> list[str]:
    """Stop and delete every cluster of the fleet and its files; returns the clusters removed.

    Only the folders this module creates are removed, so a work dir given by a caller that
    also holds other files keeps them. The fleet's port reservation is released.
    """
    work = workdir_for(name, workdir).resolve()
    with ports.fleet_lock(name, work):
        return _teardown(work, keep_logs=keep_logs)


def _teardown(work: Path, *, keep_logs: bool = False) -> list[str]:
    clusters = _known_clusters(work)
    if clusters:
        env = _tool_env(work)

        def delete(cluster: str) -> None:
            kwokctl.delete(env, cluster, work / "logs" / "down.log")

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(delete, clusters))
    for sub in ("kwok", "configs") if keep_logs else ("kwok", "configs", "logs"):
        shutil.rmtree(work / sub, ignore_errors=True)
    (work / MANIFEST).unlink(missing_ok=True)
    ports.release(work)
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    return clusters


def kubectl_hints(info: FleetInfo, limit: Iterable[ClusterInfo] | None = None) -> list[str]:
    """The commands a newcomer types next, with this fleet's real paths."""
    kubectl = str(Path(info.bin_dir) / "kubectl")
    hub = info.hub.kubeconfig
    lines = [
        f'export PATH="{info.bin_dir}:$PATH"   # the built kubectl {info.kubernetes_version}',
        f"{kubectl} --kubeconfig {hub} get crd",
        f"{kubectl} --kubeconfig {hub} -n {info.secret_namespace} get secrets",
    ]
    for member in list(limit if limit is not None else info.members[:1]):
        kubeconfig = member.kubeconfig
        lines.append(f"{kubectl} --kubeconfig {kubeconfig} get nodes -L {CARBON_LABEL}")
    return lines
