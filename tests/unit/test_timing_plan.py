"""The placer's plan in time (handlers/timing.py): a deferred plan's record, promises honoured."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from computegrid.api.common import ComputeType, LatencySensitivity
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.handlers.timing import (
    Plan,
    Promise,
    book_of,
    broken,
    fleet_forecast,
    room_now,
)
from computegrid.scheduling import (
    Decision,
    FleetState,
    JobRequest,
    TimedDecision,
    TimeScheduler,
    Window,
    window_for,
)
from computegrid.scheduling.forecast import Forecast

NAMES = ("chengdu-chongqing-chongqing", "chengdu-chongqing-tianfu", "gansu-qingyang")
P = 1796000400.0  # a whole hour
NOW = P - 90.0


@pytest.fixture(scope="module")
def state() -> FleetState:
    snaps = [s for s in load_national_fleet().snapshots() if s.name in NAMES]
    return FleetState(snaps, load_latency_model())


def job(cpu: float = 1.0) -> JobRequest:
    return JobRequest(
        name="t/j", origin="qingyang", pod_resources={"cpu": cpu, "memory": 2.0**30},
        parallelism=1, compute_type=ComputeType.GENERAL, sensitivity=LatencySensitivity.LOW,
    )  # fmt: skip


def clean_from_p(state: FleetState, clean: str) -> dict[str, Forecast | None]:
    """Hour P−1 at 600 g/kWh everywhere; from P, ``clean`` at 100, the others 500."""
    out: dict[str, Forecast | None] = {}
    for c in state.clusters:
        values = np.array([600.0] + [100.0 if c.name == clean else 500.0] * 30)
        flat = np.ones(31)
        out[c.name] = Forecast(
            P - 3600, values, values.copy(), flat * c.power.renewable_share,
            flat * c.power.price_per_kwh, source="ConfigMap", published_s=NOW,
        )  # fmt: skip
    return out


def plan(state: FleetState, forecasts: dict[str, Forecast | None], **kw: object) -> Plan:
    window = Window(NOW, 600.0, NOW + 6 * 3600)
    timed = TimeScheduler().plan(job(), state, window, fleet_forecast(state, forecasts, NOW), **kw)  # type: ignore[arg-type]
    assert isinstance(timed, TimedDecision)
    return Plan(Decision(timed.evaluation, timed.index, timed.score), timed, 600.0)


def test_a_clean_hour_ahead_defers_the_job_to_it(state: FleetState) -> None:
    p = plan(state, clean_from_p(state, "gansu-qingyang"))
    deferral = p.deferral()
    assert p.deferred and deferral is not None
    assert (deferral["cluster"], deferral["start"]) == ("gansu-qingyang", "2026-11-30T01:00:00Z")
    assert deferral["latestStart"] == "2026-11-30T06:48:30Z"  # now + 6 h − 10 min
    assert "100 g/kWh then" in deferral["reasons"][0] and p.late() == ""
    assert p.placement("t")["reasons"][0] == deferral["reasons"][0]


def test_without_forecasts_the_flat_figures_start_it_now(state: FleetState) -> None:
    p = plan(state, {})
    assert not p.deferred and p.deferral() is None


def test_a_changed_forecast_is_a_different_plan_only_when_member_or_start_moves(
    state: FleetState,
) -> None:
    recorded = plan(state, clean_from_p(state, "gansu-qingyang")).deferral()
    assert recorded is not None
    assert not plan(state, clean_from_p(state, "gansu-qingyang")).differs_from(recorded)
    moved = plan(state, clean_from_p(state, "chengdu-chongqing-tianfu"))
    assert moved.cluster == "chengdu-chongqing-tianfu" and moved.differs_from(recorded)


def test_promises_take_the_room_of_a_later_start(state: FleetState) -> None:
    """A promise filling gansu-qingyang's CPU pool from P pushes the plan elsewhere."""
    forecasts = clean_from_p(state, "gansu-qingyang")
    index = state.index["gansu-qingyang"]
    pool = float(
        state.node_free[state.rows_by_type_cluster[(0, index)]][
            :, state.resource_index["cpu"]
        ].sum()
    )
    big = Promise("other", "gansu-qingyang", job(cpu=pool), P, P + 7200)
    free = plan(state, forecasts, book=book_of(state, [big], leave_out="other"))
    assert free.cluster == "gansu-qingyang"  # its own promise is left out when re-planning
    taken = plan(state, forecasts, book=book_of(state, [big]))
    assert (taken.cluster, taken.timed.start_s) != ("gansu-qingyang", P)


def test_a_latency_critical_job_with_a_window_still_starts_now(state: FleetState) -> None:
    urgent = JobRequest(
        name="t/u", origin="qingyang", pod_resources={"cpu": 1.0}, parallelism=1,
        compute_type=ComputeType.GENERAL, sensitivity=LatencySensitivity.HIGH,
    )  # fmt: skip
    window = window_for(LatencySensitivity.HIGH, NOW, deadline_s=NOW + 6 * 3600, duration_s=600.0)
    forecast = fleet_forecast(state, clean_from_p(state, "gansu-qingyang"), NOW)
    timed = TimeScheduler().plan(urgent, state, window, forecast)
    assert isinstance(timed, TimedDecision)
    p = Plan(Decision(timed.evaluation, timed.index, timed.score), timed, 600.0)
    assert not p.deferred and p.deferral() is None and p.late() == ""


# -- the checks that keep a promise honest: at the start, and after a fleet change ------------

QINGYANG = "gansu-qingyang"


def fleet(**changes: object) -> FleetState:
    """The three clusters, gansu-qingyang's snapshot with ``changes`` (dataclasses.replace)."""
    snaps = [
        dataclasses.replace(s, **changes) if s.name == QINGYANG else s  # type: ignore[arg-type]
        for s in load_national_fleet().snapshots()
        if s.name in NAMES
    ]
    return FleetState(snaps, load_latency_model())


def filled(state: FleetState, leave_cpu: float) -> FleetState:
    """gansu-qingyang's general pool taken down to ``leave_cpu`` free cores per node."""
    rows = state.rows_by_type_cluster[(0, state.index[QINGYANG])]
    cpu = state.resource_index["cpu"]
    state.node_free[rows, cpu] = leave_cpu
    state.version += 1
    return state


def parallel(pods: int, cpu: float = 1.0) -> JobRequest:
    return dataclasses.replace(job(cpu), parallelism=pods)


# (state, cluster, request, held) → fits, words in why
@pytest.mark.parametrize(
    ("make", "cluster", "request_", "held", "fits", "words"),
    [
        (lambda: fleet(), QINGYANG, job(), False, True, ""),
        (lambda: fleet(), "nowhere", job(), False, False, "no longer in the fleet"),
        (lambda: fleet(ready=False, not_ready_reason="ProbeFailed: refused"), QINGYANG, job(),
         False, False, "not Ready (ProbeFailed: refused)"),
        (lambda: filled(fleet(), 0.0), QINGYANG, job(), False, False, "room for 0 of its 1"),
        # 3 general nodes with 1 core each left: 3 one-core pods fit, 4 do not.
        (lambda: filled(fleet(), 1.0), QINGYANG, parallel(3), False, True, ""),
        (lambda: filled(fleet(), 1.0), QINGYANG, parallel(4), False, False, "room for 3 of its 4"),
        # Its own reservation is already in the state: that room is its own.
        (lambda: filled(fleet(), 0.0), QINGYANG, job(), True, True, ""),
    ],
)  # fmt: skip
def test_room_at_the_start(
    make: object, cluster: str, request_: JobRequest, held: bool, fits: bool, words: str
) -> None:
    room = room_now(make(), cluster, request_, held=held)  # type: ignore[operator]
    assert room.fits == fits
    assert words in room.why and bool(room.why) != fits


def test_a_promise_is_broken_only_by_what_is_certain() -> None:
    small = Promise("j", QINGYANG, job(), P, P + 600)
    state = fleet()
    assert broken(state, book_of(state, [small]), small) == ""
    busy = filled(fleet(), 0.0)  # running work may end before P: not judged here
    assert broken(busy, book_of(busy, [small]), small) == ""
    down = fleet(ready=False, not_ready_reason="ProbeFailed: timeout")
    assert broken(down, book_of(down, [small]), small) == (
        f"{QINGYANG} is not Ready (ProbeFailed: timeout)"
    )
    gone = FleetState([s for s in state.clusters if s.name != QINGYANG], load_latency_model())
    assert broken(gone, book_of(gone, [small]), small) == f"{QINGYANG} left the fleet"
    huge = Promise("h", QINGYANG, job(cpu=65.0), P, P + 600)  # no node has 65 cores
    assert "no node" in broken(state, book_of(state, [huge]), huge)


def test_nodes_gone_break_the_promises_they_held() -> None:
    """Two promises of 80 cores each over the same hour (its 3 general nodes hold 192); then it keeps 2."""
    state = fleet()
    cpu = state.resource_index["cpu"]
    index = state.index[QINGYANG]
    pool = float(state.node_alloc[state.rows_by_type_cluster[(0, index)]][:, cpu].sum())
    a = Promise("a", QINGYANG, parallel(2, 40.0), P, P + 600)
    b = Promise("b", QINGYANG, parallel(2, 40.0), P + 300, P + 900)
    assert pool == 192.0 and broken(state, book_of(state, [a, b]), a) == ""
    snap = state.clusters[index]
    general = [n for n in snap.nodes if n.compute_type is ComputeType.GENERAL][:2]
    shrunk = fleet(nodes=tuple(general))
    book = book_of(shrunk, [a, b])
    for p in (a, b):
        assert "less than the 160 promised over its run" in broken(shrunk, book, p)
    alone = book_of(shrunk, [a])  # one promise alone fits the two 64-core nodes left
    assert broken(shrunk, alone, a) == ""
