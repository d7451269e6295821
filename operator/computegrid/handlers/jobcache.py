"""The operator's cache of the hub's ComputeJobs: what the hub says, in a compact form.

Memory is a cache of the hub, never the authority: every entry is the last body the hub's
watch (or one of our own writes) returned. Finished jobs drop their spec and their parsed
request, so 10,000 finished jobs cost a few megabytes, not a few hundred.

A job that succeeded reports its run once (``run_once``) to the run-time profile: its shape
and its ``status.startTime`` to ``completionTime``. The jobs a start lists already finished
report theirs too, their shape read from the body without a parse (``shape_of_body``), so a
restart finds the profile the hub's history implies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from computegrid.api import GROUP, ComputeJob, FailoverPolicy, LatencySensitivity, Phase, PodPolicy
from computegrid.handlers.placement import InvalidJob, parse_job, shape_of_body, to_request
from computegrid.lifecycle import FINISHED
from computegrid.lifecycle.machine import spec_digest
from computegrid.scheduling import JobRequest
from computegrid.scheduling.run_profile import FinishedRun, Shape, shape_of

LEGACY_FINALIZER = f"{GROUP}/finalizer"  # added by computegrid ≤ 0.1 (Kopf's), removed on sight
_PRIORITY = {
    LatencySensitivity.HIGH.value: 0,
    LatencySensitivity.MEDIUM.value: 1,
    LatencySensitivity.LOW.value: 2,
}
_STATUS_KEPT_OUT = ("placement",)  # big and never read back by the operator


def _version(text: str) -> int:
    """resourceVersions are etcd revisions in practice; ordering them drops stale events."""
    try:
        return int(text)
    except ValueError:
        return -1


def _epoch(stamp: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; None when absent or unreadable."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _run_of(shape: Shape | None, status: Mapping[str, Any]) -> FinishedRun | None:
    """A succeeded job's run from its status' times; None when either is missing or garbled."""
    start, end = _epoch(status.get("startTime")), _epoch(status.get("completionTime"))
    if shape is None or start is None or end is None or end <= start:
        return None
    return FinishedRun(shape, end - start, end)


@dataclass
class Entry:
    uid: str
    namespace: str
    name: str
    generation: int = 0
    resource_version: str = ""
    created: float = 0.0  # epoch seconds
    meta: dict[str, Any] = field(default_factory=dict)  # labels, annotations (parse_job)
    spec_text: str | None = None  # compact JSON: a fifth of the memory of parsed dicts
    failover_spec: dict[str, Any] = field(default_factory=dict)  # read every tick: kept parsed
    _status: dict[str, Any] = field(default_factory=dict)
    _status_text: str | None = None  # a finished job's status (see ``status``)
    phase: str | None = None
    cluster: str | None = None  # status.remote.cluster: where its copy is
    stale: tuple[str, ...] = ()  # members holding a stale copy still to remove
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    blocked: tuple[Any, ...] | None = None  # placement refused for this (spec, fleet) key
    outage: float | None = None  # the member outage (its start) already acted on
    _job: ComputeJob | None = None
    _request: JobRequest | None = None
    _digest: dict[str, str] | None = None
    # The run of a job that has just succeeded (its spec and request are dropped), until
    # ``run_once`` has taken it: its shape and two times, not the spec. ``_ran``: its run was
    # reported (or cannot be: no shape or no times to read).
    _finished_run: FinishedRun | None = None
    _ran: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def status(self) -> dict[str, Any]:
        """The hub's status of the job, without the placement's bulk.

        A finished job keeps it as compact JSON, parsed again on each read: parsed, a
        finished status is about a hundred small objects (19 MB for 3,000 jobs, tracemalloc),
        which also pin the allocator's arenas; as text it is one object a third the size. A
        finished job is read only when something happens to it; the loops over every job
        read ``phase``, ``cluster`` and ``stale``. Assign a new dict to change it: a change
        made to the dict a finished job returns is not kept.
        """
        if self._status_text is not None:
            return dict(json.loads(self._status_text))
        return self._status

    @status.setter
    def status(self, value: dict[str, Any]) -> None:
        self.phase = value.get("phase")
        self.cluster = (value.get("remote") or {}).get("cluster")
        self.stale = tuple(
            str(c.get("cluster")) for c in value.get("staleCopies") or [] if isinstance(c, dict)
        )
        if self.phase in FINISHED:
            self._status, self._status_text = {}, json.dumps(value, separators=(",", ":"))
        else:
            self._status, self._status_text = value, None

    def mentions(self, member: str) -> bool:
        """Whether the job has, or may still have, a copy on ``member``."""
        if self.finished and not self.stale:
            return False
        return self.cluster == member or member in self.stale

    @property
    def priority(self) -> tuple[int, float]:
        """Placement order: latency-critical first, then oldest first."""
        annotations = self.meta.get("annotations") or {}
        klass = str(annotations.get(f"{GROUP}/latency-sensitivity", "medium")).strip().lower()
        return (_PRIORITY.get(klass, 1), self.created)

    def update(self, body: Mapping[str, Any]) -> bool:
        """Take a newer body from the hub; False (ignored) when it is older than what we hold."""
        meta = body.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        if self.resource_version and _version(version) < _version(self.resource_version):
            return False
        generation = int(meta.get("generation") or 0)
        if generation != self.generation:
            self._job, self._request, self.blocked, self._digest = None, None, None, None
            self.spec_text = None
        self.generation = generation
        self.resource_version = version
        self.meta = {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "generation": generation,
            "labels": dict(meta.get("labels") or {}),
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(GROUP)
            },
        }
        created = meta.get("creationTimestamp")
        if created and not self.created:
            self.created = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
        status = dict(body.get("status") or {})
        for key in _STATUS_KEPT_OUT:
            kept = status.pop(key, None)
            if key == "placement" and kept:  # only the cluster: a Hub member's pin (federation)
                status[key] = {"cluster": kept.get("cluster")}
        self.status = status
        self.deleting = bool(meta.get("deletionTimestamp"))
        self.finalizers = tuple(meta.get("finalizers") or ())
        if self.finished:
            if self.phase == Phase.SUCCEEDED.value and not self._ran and self._finished_run is None:
                # For its run's record (``run_once``). A job this process never parsed (one
                # a start lists already finished, by the thousand) is read without a parse,
                # and its times now, before its status is kept as text.
                parsed = self._request
                shape = shape_of(parsed) if parsed is not None else shape_of_body(body)
                self._finished_run = _run_of(shape, status)
            # Read only while a job is to be placed or followed: a finished one keeps neither
            # its spec nor its labels and annotations (placement, federation routing).
            self.spec_text, self._job, self._request, self._digest = None, None, None, None
            self.meta = {}
        elif self.spec_text is None:
            spec = body.get("spec") or {}
            self.spec_text = json.dumps(spec, separators=(",", ":"))
            self.failover_spec = dict(spec.get("failover") or {})
        return True

    @property
    def spec(self) -> dict[str, Any] | None:
        """The job's spec as the hub last sent it (None once it has finished)."""
        return None if self.spec_text is None else dict(json.loads(self.spec_text))

    def ref(self) -> dict[str, str]:
        """The object reference Kopf's log formatters print (``--log-format json``)."""
        return {
            "apiVersion": "computegrid.io/v1alpha1",
            "kind": "ComputeJob",
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }

    def job(self) -> ComputeJob:
        """The parsed ComputeJob; InvalidJob naming the field."""
        if self._job is None:
            spec = self.spec
            if spec is None:
                raise InvalidJob("the job has finished")
            self._job = parse_job({"metadata": self.meta, "spec": spec})
        return self._job

    def request(self, pod_policy: PodPolicy | None = None) -> JobRequest:
        """The core's request under the pod policy in force (restricted when None)."""
        if self._request is None:
            self._request = to_request(self.job(), pod_policy)
        return self._request

    def digest(self) -> dict[str, str]:
        """The spec's per-field hashes, once per generation (every member event reads it)."""
        if self._digest is None:
            spec = self.spec
            self._digest = spec_digest(spec) if spec is not None else {}
        return self._digest

    def run_once(self) -> FinishedRun | None:
        """The run of a job that succeeded (its shape, seconds from start to completion, its
        end), once; None before that, after it, or when its shape or times are missing or
        garbled. A job that finished before the operator started reports it too."""
        if self._ran or self.phase != Phase.SUCCEEDED.value:
            return None
        run = self._finished_run or self._run_written_here()
        self._ran, self._finished_run = True, None
        return run

    def _run_written_here(self) -> FinishedRun | None:
        """The run of a job whose success this process wrote itself (``status`` set, no body
        taken yet): its request if read, else its cached spec and annotations, give its shape."""
        if self._request is not None:
            shape: Shape | None = shape_of(self._request)
        elif self.spec_text is not None:
            shape = shape_of_body({"metadata": self.meta, "spec": self.spec})
        else:
            return None  # checked first: a finished job's status is parsed on each read
        return _run_of(shape, self.status)

    def drop_parsed(self) -> None:
        """The parsed job goes until a step needs it again; the request stays (reservations).

        Why: it is three quarters of a waiting entry (~7 of 9 KB, tracemalloc), and under a
        burst thousands of jobs wait in the work queue between the steps that read it (the
        decision, its record on the hub, the create): 10,000 jobs peaked at 199.9 MB RSS
        holding them. Parsing again costs ~0.2 ms; the request (0.5 ms) is kept."""
        self._job = None

    def forget_request(self) -> None:
        """The pod policy changed: check the job again, and let it be placed again."""
        self._request, self.blocked = None, None

    def failover(self, default_grace: float) -> tuple[FailoverPolicy, float]:
        """The job's failover policy and grace period (the operator's default when unset)."""
        raw = self.failover_spec
        try:
            policy = FailoverPolicy(raw.get("policy") or FailoverPolicy.IF_NOT_STARTED.value)
        except ValueError:
            policy = FailoverPolicy.IF_NOT_STARTED
        grace = raw.get("gracePeriodSeconds")
        return policy, float(grace) if grace is not None else default_grace
