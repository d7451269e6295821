"""A running fleet's health, and bringing it back: status, repair, stop and start a member.

Why apart from ``fleet``: starting a fleet happens once; these run against a fleet that is
already there (the CLI, the integration fixtures before each test module, the chaos tests),
and they must tell the truth about every component, not only whether an API server answers:
a member whose kube-controller-manager has exited answers every request and never runs a
Job.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from computegrid.testbed import health, kube, kwokctl, ports, supervise
from computegrid.testbed.fleet import (
    DEFAULT_NAME,
    DEFAULT_NODES_PER_MEMBER,
    ClusterInfo,
    ClusterStatus,
    FleetInfo,
    _select_members,
    _tool_env,
    load,
    up,
    workdir_for,
)
from computegrid.testbed.kwokctl import KwokctlError
from computegrid.testbed.paths import ToolEnv

Say = Callable[[str], object]
NODES_BACK_SECONDS = 90.0


class RepairError(RuntimeError):
    """Some clusters could not be brought back; the message has each one's reasons."""


def _env_of(info: FleetInfo) -> ToolEnv:
    """Paths only: reading a fleet's state needs no binaries."""
    return ToolEnv(bin_dir=Path(info.bin_dir), kwok_workdir=Path(info.workdir) / "kwok")


def probe_cluster(info: FleetInfo, cluster: ClusterInfo, timeout: float = 3.0) -> ClusterStatus:
    """One cluster: every component, and the API server's readiness and version."""
    folder = kwokctl.cluster_dir(_env_of(info), cluster.kwok_cluster)
    kubeconfig = Path(cluster.kubeconfig)
    components = health.probe(folder, cluster.ports, kubeconfig, timeout)
    ready = any(c.name == "kube-apiserver" and c.ok for c in components)
    port = cluster.ports["kubeApiserverPort"]
    version = health.server_version(port, kubeconfig, timeout) if ready else None
    return ClusterStatus(cluster, ready, version, tuple(components))


def status(
    name: str = DEFAULT_NAME, workdir: Path | str | None = None, timeout: float = 3.0
) -> list[ClusterStatus]:
    """Each cluster of the fleet with its API server and every component, probed now."""
    info = load(name, workdir)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: probe_cluster(info, c, timeout), info.clusters))


def _nodes_back(cluster: ClusterInfo, since: datetime | None, timeout: float) -> None:
    """A member's nodes are Ready again and, after kwok-controller restarted (``since``),
    their Leases renewed by the new one: until it holds them, pods bound there stay Pending."""
    api = kube.api_client(Path(cluster.kubeconfig))
    try:
        if since is not None:
            kube.wait_for(
                lambda: kube.node_leases_renewed_since(api, since),
                f"{cluster.name} node leases renewed by the restarted kwok-controller",
                timeout,
            )
        want = set(cluster.nodes)
        kube.wait_for(
            lambda: True if want <= kube.ready_nodes(api) else None,
            f"{cluster.name} nodes Ready",
            timeout,
        )
    finally:
        api.close()


def _bring_back(
    info: FleetInfo,
    env: ToolEnv,
    cluster: ClusterInfo,
    log: str,
    *,
    say: Say | None = None,
    restart_hung: bool = False,
    timeout: float = supervise.SETTLE_SECONDS,
) -> list[supervise.Restart]:
    """Start what is not running, wait for every component's health, then for the nodes."""
    since = datetime.now(UTC)
    restarts = supervise.settle(
        env,
        cluster.kwok_cluster,
        cluster.ports,
        Path(cluster.kubeconfig),
        Path(info.workdir) / "logs" / log,
        timeout=timeout,
        restart_hung=restart_hung,
        say=say,
    )
    if restarts and cluster.role == "member":
        kwok_restarted = any(r.component == "kwok-controller" for r in restarts)
        _nodes_back(cluster, since if kwok_restarted else None, max(timeout, NODES_BACK_SECONDS))
    return restarts


def repair(
    name: str = DEFAULT_NAME, workdir: Path | str | None = None, *, log: Say | None = None
) -> list[supervise.Restart]:
    """Restart every component of the fleet that exited or hangs, keeping its etcd data.

    Returns what was restarted (empty when all was healthy). Raises RepairError naming the
    clusters that stayed unhealthy, with their components' log tails.
    """
    info = load(name, workdir)
    work = Path(info.workdir)
    env = _tool_env(work)
    with ports.fleet_lock(info.name, work):

        def fix(cluster: ClusterInfo) -> list[supervise.Restart] | Exception:
            try:
                return _bring_back(info, env, cluster, "repair.log", say=log, restart_hung=True)
            except (supervise.ComponentsUnhealthyError, KwokctlError, kube.NotReadyError) as exc:
                return exc

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(fix, info.clusters))
    errors = [str(r) for r in results if isinstance(r, Exception)]
    if errors:
        raise RepairError(f"fleet {info.name}: not repaired:\n" + "\n".join(errors))
    return [restart for r in results if not isinstance(r, Exception) for restart in r]


def up_or_repair(
    name: str = DEFAULT_NAME,
    members: int | None = None,
    *,
    fleet: str | None = None,
    nodes_per_member: int = DEFAULT_NODES_PER_MEMBER,
    workdir: Path | str | None = None,
    log: Say | None = None,
) -> tuple[FleetInfo, list[supervise.Restart] | None]:
    """``up`` again on the same name: a running fleet of the same shape is repaired in place
    (its etcd data kept; returns what was restarted); a missing, different or unrepairable
    one is started afresh (returns None for the restarts)."""
    say = log or (lambda *_: None)
    work = workdir_for(name, workdir).resolve()
    fresh: dict[str, Any] = {"fleet": fleet, "nodes_per_member": nodes_per_member}
    try:
        info = load(name, work)
    except FileNotFoundError:
        return up(name, members, workdir=work, log=log, **fresh), None
    wanted = [c.name for c in _select_members(members, fleet)]
    same = (
        info.name == name
        and [m.name for m in info.members] == wanted
        and all(len(m.nodes) == nodes_per_member for m in info.members)
    )
    if not same:
        say(f"fleet {name}: a different fleet is in {work}; replacing it")
        return up(name, members, workdir=work, log=log, **fresh), None
    say(f"fleet {name}: already in {work}; checking every component")
    try:
        restarts = repair(name, work, log=say)
    except RepairError as exc:
        say(f"{exc}\nfleet {name}: starting it afresh")
        return up(name, members, workdir=work, log=log, **fresh), None
    return info, restarts


def stop_member(member: str, name: str = DEFAULT_NAME, workdir: Path | str | None = None) -> None:
    """Stop every component of one member (its API server becomes unreachable); ``"hub"``
    stops the fleet's hub (a regional hub lost, in a federation)."""
    info = load(name, workdir)
    cluster = info.hub if member == info.hub.name else info.member(member)
    env = _tool_env(Path(info.workdir))
    kwokctl.stop(env, cluster.kwok_cluster, Path(info.workdir) / "logs" / "chaos.log")


def start_member(
    member: str, name: str = DEFAULT_NAME, workdir: Path | str | None = None, timeout: float = 90
) -> None:
    """Start a stopped member again (same ports, same etcd data) and wait until every
    component is healthy and its kwok-controller manages the nodes again."""
    info = load(name, workdir)
    env = _tool_env(Path(info.workdir))
    # Every component of a stopped member is "not running": settle starts them all.
    cluster = info.hub if member == info.hub.name else info.member(member)
    _bring_back(info, env, cluster, "chaos.log", timeout=timeout)
