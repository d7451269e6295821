"""Placement in time for the placer: the fleet's forecasts, the promises to Deferred jobs, and
a plan in the words the hub records.

The promises are read from the hub's record, not kept on the side: every job whose status is
``Deferred`` (the controller's cache of the hub) holds its planned capacity on its planned
member over ``[start, start + expectedDuration)``, plus the plans decided in this round and
not written yet. So a restart knows every promise as soon as the hub's watch has listed.

The core is used through ``TimeScheduler.plan`` only (scheduling/timeshift.py). Two checks
keep the promises honest afterwards, both on the operator's FleetState, no request to anyone:
``room_now`` (at a Deferred job's start: may it be released on its planned member?) and
``broken`` (after a fleet change: can the planned member still hold what was promised?).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from computegrid.api.common import Phase
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import InvalidJob, placement_status
from computegrid.lifecycle.machine import Room, rfc3339_of, seconds_of
from computegrid.scheduling import (
    Decision,
    FleetForecast,
    FleetState,
    JobRequest,
    Reservation,
    ReservationBook,
    TimedDecision,
)
from computegrid.scheduling.forecast import Forecast
from computegrid.scheduling.state import TYPE_CODES
from computegrid.scheduling.timeshift import HORIZON_H, fits_empty_node, pool_totals

MIN_DEFER_S = 1.0  # a start less than this ahead is "now"


@dataclass(frozen=True)
class Plan:
    """A windowed job's decision: where (``decision``) and when (``timed``)."""

    decision: Decision
    timed: TimedDecision
    duration_s: float

    @property
    def cluster(self) -> str:
        return self.decision.cluster.name

    @property
    def deferred(self) -> bool:
        return self.timed.start_s - self.timed.window.now_s >= MIN_DEFER_S

    def deferral(self, replans: int = 0) -> dict[str, Any] | None:
        """``status.deferral`` for a start later than now; None to start now."""
        if not self.deferred:
            return None
        latest = self.timed.window.latest_start_s
        return {
            "cluster": self.cluster,
            "start": rfc3339_of(self.timed.start_s),
            "latestStart": None if latest is None else rfc3339_of(latest),
            "replans": replans,
            "reasons": [r[:300] for r in self.timed.reasons()[:4]],
        }

    def late(self) -> str:
        """Why a windowed job starts after its latest start ("" when it does not)."""
        if not self.timed.late:
            return ""
        latest = self.timed.window.latest_start_s
        return (
            f"starting at once: the latest start {rfc3339_of(latest or 0)} (deadline − "
            "expectedDuration) has passed, the deadline may be missed"
        )

    def placement(self, decided_at: str) -> dict[str, Any]:
        out = placement_status(self.decision, decided_at)
        out["reasons"] = (self.timed.reasons() + list(out["reasons"]))[:10]
        return out

    def differs_from(self, deferral: dict[str, Any]) -> bool:
        """Does this plan change the recorded one (member, or start by a minute or more)?"""
        start = seconds_of(deferral.get("start"))
        when = self.timed.start_s if self.deferred else self.timed.window.now_s
        return self.cluster != deferral.get("cluster") or abs(when - start) >= 60.0


def fleet_forecast(
    state: FleetState, forecasts: dict[str, Forecast | None], now_s: float
) -> FleetForecast:
    """Every cluster of ``state`` (its order) on one hourly grid; flat where none is known."""
    series = []
    for name, cluster in zip(state.names, state.clusters, strict=True):
        found = forecasts.get(name)
        if found is None:
            found = Forecast.flat(cluster.power, now_s - now_s % 3600.0, int(HORIZON_H))
        series.append(found)
    return FleetForecast.of(series, now_s, hours=int(HORIZON_H) * 2)


@dataclass(frozen=True)
class Promise:
    """Capacity promised to a Deferred job (on the hub, or decided and not yet written)."""

    uid: str
    cluster: str
    request: JobRequest
    start_s: float
    end_s: float


def promise_of(entry: Entry, pod_policy: Any) -> Promise | None:
    """The promise a Deferred job's status records; None if it holds none (or is unreadable)."""
    deferral = entry.status.get("deferral") or {}
    if not deferral or deferral.get("started"):
        return None
    windowed = _windowed(entry, pod_policy)
    if windowed is None:
        return None
    request, duration_s = windowed
    start = seconds_of(deferral.get("start"))
    return Promise(entry.uid, str(deferral.get("cluster")), request, start, start + duration_s)


def _windowed(entry: Entry, pod_policy: Any) -> tuple[JobRequest, float] | None:
    """The job's request and declared duration; None without a window (or unreadable)."""
    try:
        timing = entry.job().spec.timing
        request = entry.request(pod_policy)
    except InvalidJob:
        return None
    return None if timing is None else (request, timing.duration_s)


def release_of(entry: Entry, pod_policy: Any, offset_s: float) -> Promise | None:
    """When a running windowed job's room is expected back: its pods' start plus its declared
    ``expectedDuration`` (a ``Promise`` from that end to that end). The member's ``startTime``
    is on the wall clock, moved here to the planning clock by ``offset_s``. None for any other
    job: one without a window declared no duration, one not started holds a promise instead,
    a finished one holds nothing."""
    if entry.phase != Phase.RUNNING.value:
        return None
    status = entry.status
    started, cluster = status.get("startTime"), (status.get("remote") or {}).get("cluster")
    windowed = _windowed(entry, pod_policy) if started and cluster else None
    if windowed is None:
        return None
    request, duration_s = windowed
    end = seconds_of(started) + offset_s + duration_s
    return Promise(entry.uid, str(cluster), request, end, end)


def book_of(
    state: FleetState,
    promises: Iterable[Promise],
    leave_out: str = "",
    releases: Iterable[Promise] = (),
) -> ReservationBook:
    """The promises (and the room running jobs give back at their declared ends) as the
    core's time index, on ``state``'s clusters and resources."""
    book = ReservationBook(state.size, len(state.resources))
    for p in promises:
        if p.uid != leave_out:
            hold(book, state, p)
    for r in releases:
        reservation = reservation_of(state, r)
        if reservation is not None and r.uid not in book.releases:
            book.add_release(reservation)
    return book


def hold(book: ReservationBook, state: FleetState, p: Promise) -> None:
    """Add one promise to ``book`` (nothing if its member or a resource is unknown)."""
    reservation = reservation_of(state, p)
    if reservation is not None and p.uid not in book.items:
        book.add(reservation)


def reservation_of(state: FleetState, p: Promise) -> Reservation | None:
    """The promise in the core's terms on ``state``; None if its member or a resource is
    unknown there."""
    index = state.index.get(p.cluster)
    vector = state.request_vector(p.request)
    if index is None or vector is None:
        return None
    return Reservation(
        key=p.uid,
        cluster=index,
        compute_type_code=TYPE_CODES[p.request.compute_type],
        start_s=p.start_s,
        end_s=p.end_s,
        amounts=vector * p.request.parallelism,
    )


def room_now(state: FleetState, cluster: str, request: JobRequest, *, held: bool = False) -> Room:
    """May a due Deferred job be released on ``cluster`` now? Ready, and room for all its pods.

    ``held``: the job's own reservation is already applied to ``state`` on that cluster (a
    release reserves before its hub write): that room is its own, so it fits.
    """
    index = state.index.get(cluster)
    if index is None:
        return Room(False, f"{cluster} is no longer in the fleet")
    if not state.ready[index]:
        why = state.clusters[index].not_ready_reason or "NotReady"
        return Room(False, f"{cluster} is not Ready ({why})")
    if held:
        return Room()
    fitting = int(state.pods_fitting_per_cluster(request)[index])
    if fitting < request.parallelism:
        return Room(
            False,
            f"{cluster} has room for {fitting} of its {request.parallelism} pod(s) now",
        )
    return Room()


def broken(state: FleetState, book: ReservationBook, p: Promise) -> str:
    """Why ``cluster`` can no longer keep promise ``p`` ("" when it can), after a fleet change.

    Only what is certain: the member gone or NotReady, no node that could hold one pod, or
    fewer allocatable resources in its pool of the job's compute type than the promises
    overlapping the run add up to (``book`` holds them all, ``p`` included). Room taken by
    running work is not judged here (it may end before the start): the start checks it.
    """
    index = state.index.get(p.cluster)
    if index is None:
        return f"{p.cluster} left the fleet"
    if not state.ready[index]:
        why = state.clusters[index].not_ready_reason or "NotReady"
        return f"{p.cluster} is not Ready ({why})"
    vector = state.request_vector(p.request)
    if vector is None or not fits_empty_node(p.request, state)[index]:
        return f"no node of {p.cluster} can hold one of its pods any more"
    alloc, _ = pool_totals(p.request, state)
    code = TYPE_CODES[p.request.compute_type]
    peak = book.peak(code, np.array([p.start_s]), p.end_s - p.start_s)[0, index]
    for r in np.flatnonzero(vector > 0):
        if alloc[index, r] < peak[r] - 1e-9:
            return (
                f"{p.cluster}'s {p.request.compute_type.value} nodes now hold "
                f"{alloc[index, r]:g} {state.resources[r]}, less than the {peak[r]:g} promised "
                "over its run"
            )
    return ""
