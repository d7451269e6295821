"""The members as the operator knows them: spec, client, health, snapshot and Job copies.

One object because placement needs every member's snapshot at once and the dispatch state
machine needs, per member, its health and the copies its watch shows. Probing lives in
``probes.py``, the watch in ``watch.py``, placement capacity in ``capacity.py``; this module
only keeps their results. Everything here is touched on the event loop only: the watch
threads hand their news over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from computegrid.api import LABEL_JOB_UID, LABEL_ORIGIN_CLUSTER, MemberClusterSpec
from computegrid.api.member_cluster import CHILD_SEPARATOR
from computegrid.fleet.client import (
    MEMBER_CALLS_AT_ONCE,
    Body,
    HubClient,
    KubeMemberClient,
    MemberClient,
)
from computegrid.fleet.federation import HubMemberClient, is_hub
from computegrid.fleet.forecasts import MemberForecast
from computegrid.fleet.rest import status_message
from computegrid.fleet.watch import JobWatch
from computegrid.lifecycle.machine import Copy, Health, Member
from computegrid.lifecycle.mirror import copy_of
from computegrid.scheduling import ClusterSnapshot

ClientFactory = Callable[[str, MemberClusterSpec], MemberClient]


@dataclass
class MemberState:
    """What the probes and the watch last said about one member."""

    name: str
    spec: MemberClusterSpec
    labels: dict[str, str] = field(default_factory=dict)
    uid: str = ""  # the MemberCluster's uid (for its Events)
    snapshot: ClusterSnapshot | None = None
    children: tuple[ClusterSnapshot, ...] = ()  # a Hub member's clusters (fleet.federation)
    ready: bool = False
    probed: bool = False  # one probe finished (well or not): placement need not wait for it
    failures: int = 0
    down_since: float | None = None  # time.monotonic()
    not_ready_reason: str = "not probed yet"
    synced: bool = False  # the Job watch has listed and is following
    watch_error: str = ""  # why the Job watch's last list or watch failed ("" since a list)
    copies: dict[str, Copy] = field(default_factory=dict)  # by ComputeJob uid
    watch: JobWatch | None = None
    forecast: MemberForecast | None = None  # the last refresh (fleet/forecasts.py)
    forecast_at: float | None = None  # time.monotonic() of that refresh


class Fleet:
    """Member clients, snapshots, health and Job copies; used from the event loop."""

    def __init__(
        self,
        hub: HubClient | None,
        *,
        hub_name: str,
        client_factory: ClientFactory | None = None,
        threshold: int = 3,
        max_workers: int = MEMBER_CALLS_AT_ONCE,
    ) -> None:
        self.hub = hub
        self.hub_name = hub_name
        self.client_factory = client_factory or self._from_secret
        self.threshold = threshold
        self.members: dict[str, MemberState] = {}
        self.clients: dict[str, MemberClient] = {}
        self.generation = 0  # moves when any member's readiness or capacity changes
        self.removed: dict[str, float] = {}  # MemberClusters deleted from the hub
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="member")

    @property
    def selector(self) -> str:
        """This hub's Jobs on a member: every list, watch and clean-up selects on it."""
        return f"{LABEL_ORIGIN_CLUSTER}={self.hub_name},{LABEL_JOB_UID}"

    def _from_secret(self, name: str, spec: MemberClusterSpec) -> MemberClient:
        if self.hub is None:
            raise RuntimeError("no hub client to read member kubeconfig Secrets with")
        ref = spec.kubeconfig_secret_ref
        text = self.hub.read_secret(ref.namespace, ref.name, ref.key)
        if is_hub(spec):
            return HubMemberClient.from_kubeconfig(name, text)
        return KubeMemberClient.from_kubeconfig(name, text)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking call in the member thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    # -- membership ---------------------------------------------------------------------

    def register(
        self, name: str, spec: MemberClusterSpec, labels: Mapping[str, str]
    ) -> MemberState:
        state = self.members.get(name)
        self.removed.pop(name, None)
        if state is None:
            state = self.members[name] = MemberState(name, spec, dict(labels))
            self.generation += 1
        elif state.spec != spec:
            state.spec = spec
            self.drop_client(name)  # the Secret reference may have changed
            self.generation += 1
        state.labels = dict(labels)
        return state

    def forget(self, name: str) -> None:
        """A MemberCluster deleted from the hub: its jobs count as lost from now on."""
        state = self.members.pop(name, None)
        if state is not None and state.watch is not None:
            state.watch.stop()
        self.removed[name] = time.monotonic()
        self.drop_client(name)
        self.generation += 1

    def _delete_jobs(self, name: str) -> list[str]:
        """Delete this hub's Jobs on the member; the names that could not be deleted."""
        member = self.client(name)
        left = []
        for job in member.list_jobs(self.selector):
            meta = job.get("metadata") or {}
            try:
                member.delete_job(str(meta.get("namespace")), str(meta.get("name")))
            except Exception:  # reported to the caller by name; the rest still go
                left.append(f"{meta.get('namespace')}/{meta.get('name')}")
        return left

    async def withdraw(self, name: str, timeout: float) -> list[str]:
        """Remove this hub's Jobs from a member being unregistered (bounded by ``timeout``);
        what is left behind, or ``["(member unreachable: …)"]``."""
        if name not in self.members:
            return []
        try:
            left: list[str] = await asyncio.wait_for(self.run(self._delete_jobs, name), timeout)
        except Exception as exc:  # unreachable or too slow: the caller reports it
            return [f"(member unreachable: {status_message(exc)})"]
        return left

    def drop_client(self, name: str) -> None:
        old = self.clients.pop(name, None)
        if old is not None:
            old.close()

    def client(self, name: str) -> MemberClient:
        """The member's client, built on first use (raises when the Secret is unusable)."""
        existing = self.clients.get(name)
        if existing is not None:
            return existing
        state = self.members.get(name)
        if state is None:
            raise KeyError(f"unknown member cluster {name!r}")
        made = self.client_factory(name, state.spec)
        self.clients[name] = made
        return made

    # -- the watch's news (event loop) --------------------------------------------------

    def reset_copies(self, name: str, jobs: list[Body]) -> set[str]:
        """A (re)list: the member's copies are exactly these; the uids that changed."""
        state = self.members.get(name)
        if state is None:
            return set()
        fresh = {}
        for job in jobs:
            uid = _uid_of(job)
            if uid:
                fresh[uid] = copy_of(name, job, self.hub_name)
        changed = {
            u for u in fresh.keys() | state.copies.keys() if fresh.get(u) != state.copies.get(u)
        }
        state.copies = fresh
        state.synced, state.watch_error = True, ""
        return changed

    def update_copy(self, name: str, kind: str, job: Body) -> str | None:
        """One watch event; the ComputeJob uid it concerns (None: not ours)."""
        state = self.members.get(name)
        uid = _uid_of(job)
        if state is None or not uid:
            return None
        if kind == "DELETED":
            state.copies.pop(uid, None)
        else:
            state.copies[uid] = copy_of(name, job, self.hub_name)
        return uid

    def created(self, name: str, uid: str, copy: Copy) -> None:
        """Our own create's (or adoption's) answer, known before the watch says so, so the job
        is never created twice. The answer can arrive after the watch delivered a newer state
        of the same Job (a busy thread pool: seen at 10,000 jobs, the Job had finished): the
        newer one stays, or the job would wait for an event that never comes."""
        state = self.members.get(name)
        if state is None:
            return
        held = state.copies.get(uid)
        if held is not None and held.uid == copy.uid and held.version >= copy.version:
            return
        state.copies[uid] = copy

    def watch_failed(self, name: str, why: str = "") -> None:
        state = self.members.get(name)
        if state is not None:
            state.synced, state.watch_error = False, why or "the watch failed"

    # -- what the state machine and placement read -----------------------------------------

    def view(self, name: str, uid: str, expected: str | None = None) -> Member:
        """``name``'s health and the copy of job ``uid`` there (by name when ``expected``)."""
        state = self.members.get(name)
        if state is None:
            removed = self.removed.get(name)
            if removed is not None:
                return Member(Health.REMOVED, time.monotonic() - removed)
            return Member(Health.UNKNOWN)
        if state.watch is None:
            return Member(Health.UNKNOWN)  # this replica is paused or has not started it
        if not state.ready:
            if state.down_since is None:
                return Member(Health.UNKNOWN)
            return Member(Health.UNREACHABLE, time.monotonic() - state.down_since)
        if not state.synced:
            return Member(Health.UNKNOWN)
        copy = state.copies.get(uid)
        if copy is not None and expected is not None and copy.name != expected:
            copy = None
        return Member(Health.READY, copy=copy)

    def copies_of(self, uid: str) -> list[Copy]:
        return [s.copies[uid] for s in self.members.values() if uid in s.copies]

    def snapshots(self) -> list[ClusterSnapshot]:
        """Every probed member; NotReady ones with ready=False and the reason (for diagnoses)."""
        out = []
        for state in self.members.values():
            if state.snapshot is None:
                continue
            # A Hub member stands for its child clusters, judged one by one (fleet.federation).
            for snap in state.children if is_hub(state.spec) else (state.snapshot,):
                if not state.ready or state.watch is None:
                    reason = state.not_ready_reason or "not watched by this replica"
                    snap = replace(snap, ready=False, not_ready_reason=reason)
                out.append(snap)
        return out

    def member_of(self, cluster: str) -> str:
        """The member a placement's cluster lives on: ``"<hub member>/<child>"`` → the hub
        member; a plain member's name → itself."""
        return cluster.split(CHILD_SEPARATOR, 1)[0]

    def close(self) -> None:
        for state in self.members.values():
            if state.watch is not None:
                state.watch.stop()
        for name in list(self.clients):
            self.drop_client(name)
        if self.hub is not None:
            self.hub.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _uid_of(job: Body) -> str | None:
    labels = (job.get("metadata") or {}).get("labels") or {}
    uid = labels.get(LABEL_JOB_UID)
    return str(uid) if uid else None
