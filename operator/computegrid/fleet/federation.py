"""A member that is itself a computegrid hub (``spec.type: Hub``, issue 10).

The parent learns the child's clusters from the child hub's own MemberCluster statuses
(location, compute types, capacity per type, power, readiness: ``fleet.live`` reads them the
same way for ``kubectl computegrid``), so latency and carbon are judged cluster by cluster:
in the parent's fleet view a Hub member ``yangtze-delta`` expands into one snapshot per
child cluster, named ``yangtze-delta/<child cluster>``. What is sent there is a ComputeJob,
and what is watched are the child's ComputeJobs of this hub: ``HubMemberClient`` is a member
client whose "jobs" are the child hub's ComputeJobs, so the registry, the watch and the
dispatch state machine work unchanged.

Limits, stated: capacity is read from the child's statuses as ``fleet.live`` reads it (per
compute type, its listed largest nodes exactly and equal shares of the rest), so the parent's
fit check is close to, not the same as, the child's own decision, which checks node by node.
A child's own Hub members are not expanded (one level per hop; deeper levels are
reached through Autonomous delegation).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from computegrid.api import MemberClusterSpec, MemberType
from computegrid.api.conditions import now_rfc3339
from computegrid.api.member_cluster import CHILD_SEPARATOR
from computegrid.fleet.client import GROUP, VERSION, Body, KubeMemberClient
from computegrid.fleet.live import StatusError, snapshot_from_status
from computegrid.fleet.rest import DEFAULT_TIMEOUT, path_of
from computegrid.fleet.snapshot import UNKNOWN_POWER
from computegrid.fleet.status import ready_status
from computegrid.scheduling import ClusterSnapshot, PowerMix

COMPUTEJOBS = path_of("apis", GROUP, VERSION, "computejobs")
# Patches a Job takes that a ComputeJob has no field for: a child hub's record stays as it is
# (a stale copy is deleted right after, and the child deletes its own Job with it).
_JOB_ONLY = ("suspend", "ttlSecondsAfterFinished")


def child_name(member: str, cluster: str) -> str:
    return f"{member}{CHILD_SEPARATOR}{cluster}"


def is_hub(spec: MemberClusterSpec) -> bool:
    return spec.type == MemberType.HUB


class HubMemberClient(KubeMemberClient):
    """A child hub as a member: its "jobs" are the ComputeJobs there, its capacity its
    MemberClusters' statuses. Nodes and pods are the child operator's business."""

    @classmethod
    def from_kubeconfig(
        cls, name: str, kubeconfig: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> HubMemberClient:
        made = KubeMemberClient.from_kubeconfig(name, kubeconfig, timeout)
        return cls(name, made.rest)

    def list_nodes(self) -> list[Body]:
        return []

    def list_pods(self) -> list[Body]:
        return []

    def list_member_clusters(self) -> list[Body]:
        return self.rest.list_all(path_of("apis", GROUP, VERSION, "memberclusters"))[0]

    def list_jobs_at(self, label_selector: str) -> tuple[list[Body], str]:
        return self.rest.list_all(COMPUTEJOBS, {"labelSelector": label_selector})

    def watch_jobs(
        self, label_selector: str, resource_version: str, server_timeout: int, read_timeout: float
    ) -> Iterator[Body]:
        query = {"labelSelector": label_selector, "resourceVersion": resource_version}
        return self.rest.watch(
            COMPUTEJOBS, query, server_timeout=server_timeout, read_timeout=read_timeout
        )

    def _job_path(self, namespace: str, name: str = "") -> str:
        return path_of("apis", GROUP, VERSION, "namespaces", namespace, "computejobs", name)

    def patch_job(self, namespace: str, name: str, patch: Body) -> Body | None:
        spec = {k: v for k, v in (patch.get("spec") or {}).items() if k not in _JOB_ONLY}
        rest = {k: v for k, v in patch.items() if k != "spec"}
        if not spec and not rest:
            return self.get_job(namespace, name)
        return super().patch_job(namespace, name, {**rest, **({"spec": spec} if spec else {})})


def child_snapshots(member: str, bodies: list[Body]) -> tuple[list[ClusterSnapshot], list[str]]:
    """The child hub's plain clusters as the parent's snapshots, and the ones it could not read
    (named, with the field). Its own Hub members are left out (see the module's limits)."""
    out, problems = [], []
    for body in bodies:
        if (body.get("spec") or {}).get("type") == MemberType.HUB.value:
            continue
        try:
            snap = snapshot_from_status(body)
        except StatusError as exc:
            problems.append(str(exc))
            continue
        out.append(replace(snap, name=child_name(member, snap.name)))
    return sorted(out, key=lambda s: s.name), problems


def _mean_power(children: list[ClusterSnapshot]) -> PowerMix:
    """CPU-weighted mean power of the ready children (for the Hub member's own status)."""
    weights = [(c, sum(n.allocatable.get("cpu", 0.0) for n in c.nodes)) for c in children]
    total = sum(w for c, w in weights if c.ready)
    if total <= 0:
        return UNKNOWN_POWER
    return PowerMix(
        sum(c.power.renewable_share * w for c, w in weights if c.ready) / total,
        sum(c.power.carbon_intensity * w for c, w in weights if c.ready) / total,
        sum(c.power.price_per_kwh * w for c, w in weights if c.ready) / total,
    )


def hub_summary(
    member: str, spec: MemberClusterSpec, labels: Mapping[str, str], children: list[ClusterSnapshot]
) -> ClusterSnapshot:
    """The Hub member as one cluster, for its own MemberCluster status on the parent: the
    ready children's nodes as read from their statuses, together. Placement never reads it (it
    reads the children)."""
    nodes = tuple(n for c in children if c.ready for n in c.nodes)
    return ClusterSnapshot(
        name=member,
        hub=spec.hub,
        region=spec.region,
        location=spec.location,
        power=_mean_power(children),
        nodes=nodes,
        ready=True,
        labels=dict(labels),
    )


def hub_status(
    summary: ClusterSnapshot,
    children: list[ClusterSnapshot],
    previous: list[Mapping[str, Any]] | None,
    now: str | None = None,
) -> dict[str, Any]:
    """The Hub member's status: the usual body, its Ready message naming its clusters."""
    body = ready_status(summary, previous, now or now_rfc3339())
    ready = sum(1 for c in children if c.ready)
    message = f"hub with {len(children)} clusters, {ready} ready"
    for cond in body["conditions"]:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            cond["message"] = message
    return body


def collect(client: Any) -> tuple[list[Body], float]:
    """The child hub's MemberClusters (blocking; run in the fleet's pool)."""
    started = time.monotonic()
    return client.list_member_clusters(), time.monotonic() - started
