"""The fleet as the operator knows it: one client, one latest snapshot and health per member.

Why one object: placement needs every member's snapshot at once, mirroring needs the Jobs
each member reported, and member loss needs since-when a member is down. Probes run the
synchronous client in a bounded thread pool (never on the event loop), a few quick retries
(tenacity) absorb a blip, and a member is NotReady only after ``threshold`` failed probes.

One probe lists the member's Nodes, non-terminal Pods and computegrid Jobs: three requests
per member per interval whatever the number of ComputeJobs, which is why status mirroring
reads the Jobs from here instead of asking the member once per ComputeJob.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from urllib3.exceptions import HTTPError

from computegrid.api import LABEL_JOB_UID, MemberClusterSpec
from computegrid.fleet.client import Body, HubSecrets, KubeMemberClient, MemberClient
from computegrid.fleet.snapshot import build_snapshot
from computegrid.fleet.status import failed_status, now_rfc3339, ready_status
from computegrid.scheduling import ClusterSnapshot, FleetState, JobRequest, LatencyModel

ClientFactory = Callable[[str, MemberClusterSpec], MemberClient]
RESERVATION_TTL_S = 120.0


def transient(exc: BaseException) -> bool:
    """Worth retrying: the member did not answer, or answered 429/5xx."""
    if isinstance(exc, ApiException):
        return exc.status is None or exc.status == 429 or exc.status >= 500
    return isinstance(exc, HTTPError | ConnectionError | OSError | TimeoutError)


@dataclass
class MemberState:
    """What the last probes said about one member."""

    name: str
    spec: MemberClusterSpec
    labels: dict[str, str] = field(default_factory=dict)
    snapshot: ClusterSnapshot | None = None
    ready: bool = False
    failures: int = 0
    down_since: datetime | None = None
    not_ready_reason: str = "not probed yet"
    jobs: dict[str, Body] = field(default_factory=dict)  # by computegrid.io/job-uid
    reservations: dict[str, tuple[JobRequest, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    status: dict[str, Any]
    ready: bool
    changed: bool  # readiness or free capacity moved: Pending jobs deserve another try
    seconds: float
    error: str | None = None


class Fleet:
    """Member clients, snapshots and health; safe to use from the event loop."""

    def __init__(
        self,
        secrets: HubSecrets | None,
        *,
        client_factory: ClientFactory | None = None,
        threshold: int = 3,
        max_workers: int = 16,
        retries: int = 2,
    ) -> None:
        self.secrets = secrets
        self.client_factory = client_factory or self._from_secret
        self.threshold = threshold
        self.retries = retries
        self.members: dict[str, MemberState] = {}
        self.clients: dict[str, MemberClient] = {}
        self.generation = 0  # bumped when any member's readiness or capacity changes
        self.removed: dict[str, datetime] = {}  # MemberClusters deleted from the hub
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="member")

    def _from_secret(self, name: str, spec: MemberClusterSpec) -> MemberClient:
        if self.secrets is None:
            raise RuntimeError("no hub client to read member kubeconfig Secrets with")
        ref = spec.kubeconfig_secret_ref
        text = self.secrets.read(ref.namespace, ref.name, ref.key)
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
        elif state.spec != spec:
            state.spec = spec
            self._drop_client(name)  # the Secret reference may have changed
        state.labels = dict(labels)
        return state

    def _delete_jobs(self, name: str) -> list[str]:
        """Delete every computegrid Job on the member; the names that could not be deleted."""
        member = self.client(name)
        left = []
        for job in member.list_jobs(LABEL_JOB_UID):
            meta = job.get("metadata") or {}
            try:
                member.delete_job(str(meta.get("namespace")), str(meta.get("name")))
            except Exception:  # reported to the caller by name; the rest still go
                left.append(f"{meta.get('namespace')}/{meta.get('name')}")
        return left

    async def withdraw(self, name: str, timeout: float) -> list[str]:
        """Remove our Jobs from a member being unregistered, so that a rescheduled job never
        runs twice; bounded by ``timeout``. Returns what is left behind (empty: all gone), or
        ``["(member unreachable: …)"]`` when the member could not be asked at all."""
        if name not in self.members:
            return []
        try:
            left: list[str] = await asyncio.wait_for(self.run(self._delete_jobs, name), timeout)
        except Exception as exc:  # unreachable or too slow: the caller reports it
            return [f"(member unreachable: {_describe(exc)})"]
        return left

    def forget(self, name: str) -> None:
        """A MemberCluster deleted from the hub: its jobs count as lost from now on."""
        self.members.pop(name, None)
        self.removed[name] = datetime.now(UTC)
        self._drop_client(name)
        self.generation += 1

    def _drop_client(self, name: str) -> None:
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

    def set_client(self, name: str, member: MemberClient) -> None:
        """Swap a member's client (tests)."""
        self._drop_client(name)
        self.clients[name] = member

    # -- probing ------------------------------------------------------------------------

    def _collect(self, name: str) -> tuple[list[Body], list[Body], list[Body]]:
        for attempt in Retrying(
            stop=stop_after_attempt(1 + self.retries),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception(transient),
            reraise=True,
        ):
            with attempt:
                member = self.client(name)
                return member.list_nodes(), member.list_pods(), member.list_jobs(LABEL_JOB_UID)
        raise AssertionError("unreachable")  # pragma: no cover

    async def probe(
        self, name: str, previous_conditions: list[Mapping[str, Any]] | None
    ) -> ProbeResult:
        """Probe one registered member and return its new ``.status`` body."""
        state = self.members[name]
        started = time.monotonic()
        now = now_rfc3339()
        try:
            nodes, pods, jobs = await self.run(self._collect, name)
        except Exception as exc:  # any failure is a failed probe, reported in the condition
            self._drop_client(name)
            state.failures += 1
            error = _describe(exc)
            was_ready = state.ready
            if state.failures >= self.threshold:
                state.ready = False
                state.not_ready_reason = f"ProbeFailed: {error}"
                if state.down_since is None:
                    state.down_since = datetime.now(UTC)
            if was_ready != state.ready:
                self.generation += 1
            body = failed_status(previous_conditions, state.failures, self.threshold, error, now)
            return ProbeResult(body, state.ready, was_ready != state.ready, _since(started), error)
        snapshot = build_snapshot(name, state.spec, nodes, pods, state.labels)
        changed = (
            (not state.ready) or state.snapshot is None or _free(state.snapshot) != _free(snapshot)
        )
        seen = {(p.get("metadata") or {}).get("labels", {}).get(LABEL_JOB_UID) for p in pods} | set(
            _jobs_by_uid(jobs)
        )
        expired = time.monotonic() - RESERVATION_TTL_S
        state.reservations = {
            uid: r for uid, r in state.reservations.items() if uid not in seen and r[1] > expired
        }
        state.snapshot = snapshot
        state.jobs = _jobs_by_uid(jobs)
        state.ready, state.failures, state.down_since = True, 0, None
        state.not_ready_reason = ""
        if changed:
            self.generation += 1
        body = ready_status(snapshot, previous_conditions, now)
        return ProbeResult(body, True, changed, _since(started))

    # -- what placement and mirroring read ------------------------------------------------

    def snapshots(self) -> list[ClusterSnapshot]:
        """Every probed member; NotReady ones with ready=False and the reason (for diagnoses)."""
        out = []
        for state in self.members.values():
            if state.snapshot is None:
                continue
            snap = state.snapshot
            if not state.ready:
                snap = replace(snap, ready=False, not_ready_reason=state.not_ready_reason)
            out.append(snap)
        return out

    def state(self, latency: LatencyModel) -> FleetState:
        """A FleetState of the current snapshots minus capacity promised to in-flight jobs."""
        fleet = FleetState(self.snapshots(), latency)
        for state in self.members.values():
            index = fleet.index.get(state.name)
            if index is None:
                continue
            for request, _ in state.reservations.values():
                try:
                    fleet.reserve(index, request)
                except ValueError:
                    continue  # the probe already counts it, or it no longer fits: skip
        return fleet

    def reserve(self, name: str, uid: str, request: JobRequest) -> None:
        """Hold capacity for a just-dispatched job until a probe sees its pods."""
        if name in self.members:
            self.members[name].reservations[uid] = (request, time.monotonic())

    def job(self, name: str, uid: str) -> Body | None:
        state = self.members.get(name)
        return state.jobs.get(uid) if state else None

    def is_ready(self, name: str) -> bool:
        state = self.members.get(name)
        return bool(state and state.ready)

    def down_for(self, name: str) -> float | None:
        """Seconds the member has been NotReady or removed (None when Ready or never seen).

        A member not registered yet (a restarted operator before its first probe) is not
        lost: its jobs wait for the probe rather than being moved at once.
        """
        state = self.members.get(name)
        if state is None:
            removed = self.removed.get(name)
            return (datetime.now(UTC) - removed).total_seconds() if removed else None
        if state.ready or state.down_since is None:
            return None
        return (datetime.now(UTC) - state.down_since).total_seconds()

    def close(self) -> None:
        for name in list(self.clients):
            self._drop_client(name)
        if self.secrets is not None:
            self.secrets.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _jobs_by_uid(jobs: list[Body]) -> dict[str, Body]:
    out = {}
    for job in jobs:
        uid = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_JOB_UID)
        if uid:
            out[uid] = job
    return out


def _free(snapshot: ClusterSnapshot) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    return tuple(
        (n.name, tuple(sorted((r, round(n.free(r), 3)) for r in n.allocatable)))
        for n in snapshot.nodes
    )


def _since(started: float) -> float:
    return time.monotonic() - started


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"[:300]
