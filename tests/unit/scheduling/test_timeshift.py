"""Space-time placement: (cluster, start hour) over a job's window, with promises honoured."""

from __future__ import annotations

import numpy as np
import pytest
from builders import GIB, cluster, job, state
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.api.common import LatencySensitivity, Region
from computegrid.scheduling import Decision, Scheduler
from computegrid.scheduling.forecast import HOUR_S, Forecast
from computegrid.scheduling.state import TYPE_CODES
from computegrid.scheduling.timeshift import (
    FleetForecast,
    Reservation,
    ReservationBook,
    TimedDecision,
    TimeScheduler,
    Window,
    window_for,
)

LOW, MEDIUM, HIGH = LatencySensitivity.LOW, LatencySensitivity.MEDIUM, LatencySensitivity.HIGH
H = HOUR_S

# qingyang (13.6 ms from Beijing): 477 g/kWh except a solar valley of 210 at hours 3-5.
# zhangjiakou (2.3 ms, the nearest): flat 700. Both 0.5 CNY/kWh.
VALLEY = [477.0] * 3 + [210.0] * 3 + [477.0] * 42
FLAT_700 = [700.0] * 48


def fleet_forecast(*carbon: list[float], price: list[list[float]] | None = None) -> FleetForecast:
    """Clusters in name order (the state's): one carbon series each, prices flat 0.5."""
    c = np.column_stack([np.array(x) for x in carbon])
    p = np.column_stack([np.array(x) for x in price]) if price else np.full(c.shape, 0.5)
    return FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), p)


def two_clusters() -> tuple[object, FleetForecast]:
    s = state(
        cluster("qingyang", carbon=477, price=0.5),
        cluster("zhangjiakou", carbon=700, price=0.5, region=Region.EAST),
    )
    return s, fleet_forecast(VALLEY, FLAT_700)  # names sorted: qingyang, zhangjiakou


def plan(
    window: Window, sensitivity: LatencySensitivity = LOW, book: ReservationBook | None = None
) -> TimedDecision:
    s, f = two_clusters()
    result = TimeScheduler().plan(job("beijing", sensitivity=sensitivity), s, window, f, book)  # type: ignore[arg-type]
    assert isinstance(result, TimedDecision)
    return result


def test_defers_into_the_solar_valley() -> None:
    # 2 h run, deadline 10 h: starts 0, 1 h … 8 h. On qingyang [3 h, 5 h) averages 210:
    # score (5 × 100(1 − 0.21) + 1 × 100(1 − 0.5)) / 6 = (395 + 50)/6 = 74.17; now there it
    # is (5 × 52.3 + 50)/6 = 51.92; zhangjiakou (5 × 30 + 50)/6 = 33.33. [4 h, 6 h) ties at
    # 210: the earlier start wins.
    d = plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H))
    assert (d.cluster, d.start_at, d.deferred) == ("qingyang", 3 * H, True)
    assert d.score == pytest.approx((5 * 79 + 50) / 6)
    assert len(d.starts) == 9
    # Saved against starting now on zhangjiakou: IT (4 cores × 10 W + 8 GiB × 0.375 W) =
    # 43 W; there 43 W × PUE 1.25 (east) × 2 h × 700 = 75.25 g, on qingyang 43 W × 1.2 (west)
    # × 2 h × 210 = 21.67 g: 53.58 gCO2e saved.
    assert d.saved_g() == pytest.approx(0.043 * 2 * (1.25 * 700 - 1.2 * 210))
    assert d.reasons() == [
        "start at 11:00 on qingyang: 210 g/kWh then vs 477 now; saves 54 gCO2e against "
        "starting now on zhangjiakou"
    ]  # 3 h after Unix 0 is 11:00 in Beijing (UTC+8)
    hours = d.hour_by_hour()
    assert [r["chosen"] for r in hours].count(True) == 1 and hours[3]["carbon"] == 210.0


def test_the_deadline_cuts_the_window() -> None:
    # Deadline 4 h, 2 h run: latest start 2 h; [2 h, 4 h) on qingyang = (477 + 210)/2 = 343.5,
    # the best reachable.
    d = plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=4 * H))
    assert (d.cluster, d.start_s) == ("qingyang", 2 * H)
    assert d.carbon[2, 0] == pytest.approx(343.5)
    assert d.start_s + 2 * H <= 4 * H


def test_not_before_starts_the_window_later() -> None:
    # From 4 h: [4 h, 6 h) = 210 is the first and best candidate.
    d = plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H, not_before_s=4 * H))
    assert d.start_s == 4 * H and d.starts[0] == 4 * H


@pytest.mark.parametrize(
    ("window", "sensitivity"),
    [
        (Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H), HIGH),  # critical: now
        (Window(now_s=0.0), LOW),  # no window: now
        (Window(now_s=0.0, duration_s=2 * H), LOW),  # a duration but no deadline: now
    ],
)
def test_jobs_without_a_usable_window_start_now(
    window: Window, sensitivity: LatencySensitivity
) -> None:
    d = plan(window_for(sensitivity, window.now_s, deadline_s=window.deadline_s,
                        duration_s=window.duration_s), sensitivity)  # fmt: skip
    assert d.start_s == 0.0 and not d.deferred and len(d.starts) == 1


def test_no_window_picks_what_the_plain_scheduler_picks() -> None:
    s, f = two_clusters()
    j = job("beijing", sensitivity=MEDIUM)
    plain = Scheduler().schedule(j, s)  # type: ignore[arg-type]
    timed = TimeScheduler().plan(j, s, Window(now_s=0.0), f)  # type: ignore[arg-type]
    assert isinstance(plain, Decision) and isinstance(timed, TimedDecision)
    assert (timed.cluster, timed.score) == (plain.cluster.name, pytest.approx(plain.score))


def test_a_late_job_starts_at_once_and_says_so() -> None:
    # 2 h run due in 1 h: cannot be met; one candidate, now.
    d = plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=1 * H))
    assert d.late and d.start_s == 0.0
    assert d.reasons()[0] == "the deadline can no longer be met: starting at once"


def promise(cluster: int, start_h: float, end_h: float, cpu: float) -> Reservation:
    s, _ = two_clusters()
    amounts = np.zeros(len(s.resources))  # type: ignore[attr-defined]
    amounts[s.resource_index["cpu"]] = cpu  # type: ignore[attr-defined]
    return Reservation("other/job", cluster, TYPE_CODES[job().compute_type], start_h * H,
                       end_h * H, amounts)  # fmt: skip


def test_promised_capacity_is_not_given_twice() -> None:
    # qingyang has 64 cpu; 62 are promised from 3 h to 5 h, so a 4-cpu run may not touch
    # hour slots 3 or 4: starts 2 h…4 h are out. The best left is 5 h: [5 h, 7 h) averages
    # (210 + 477)/2 = 343.5, better than 477 now.
    book = ReservationBook(clusters=2, resources=len(two_clusters()[0].resources))  # type: ignore[attr-defined]
    book.add(promise(0, 3, 5, 62))
    d = plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H), book=book)
    assert (d.cluster, d.start_s) == ("qingyang", 5 * H)
    assert d.carbon[5, 0] == pytest.approx(343.5)
    assert not np.isfinite(d.totals[2:5, 0]).any() and np.isfinite(d.totals[5, 0])
    # Released, the valley is free again.
    book.remove("other/job")
    assert plan(Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H), book=book).start_s == 3 * H


def test_a_critical_job_starts_now_whatever_is_promised() -> None:
    # 62 of zhangjiakou's 64 cpu are promised over the next hour. A medium job without a
    # window honours the promise over its first hour (4 cpu do not fit in the 2 left), so it
    # goes to qingyang (13.6 ms, inside its 20 ms budget); a high-class job (5 ms: only
    # zhangjiakou) is never held back by a promise: it starts now there, and the deferred
    # job re-plans if its room is gone.
    book = ReservationBook(clusters=2, resources=len(two_clusters()[0].resources))  # type: ignore[attr-defined]
    book.add(promise(1, 0, 1, 62))
    medium = plan(Window(now_s=0.0), MEDIUM, book=book)
    assert (medium.cluster, medium.start_s) == ("qingyang", 0.0)
    high = plan(Window(now_s=0.0), HIGH, book=book)
    assert (high.cluster, high.start_s) == ("zhangjiakou", 0.0)
    book.remove("other/job")
    assert plan(Window(now_s=0.0), MEDIUM, book=book).cluster == "zhangjiakou"


def test_promises_may_yield_to_every_job_without_a_window() -> None:
    # The same promise (62 of zhangjiakou's 64 cpu over the next hour). With unknown_run_h = 0
    # a job without a window is not held back by it either: the medium job starts now on
    # zhangjiakou, its best cluster with the promise ignored (as the plain scheduler picks).
    # A windowed job still honours it: its 2 h run may not start on zhangjiakou in slot 0.
    s, f = two_clusters()
    book = ReservationBook(clusters=2, resources=len(s.resources))  # type: ignore[attr-defined]
    book.add(promise(1, 0, 1, 62))
    yielding = TimeScheduler(unknown_run_h=0.0)
    medium = yielding.plan(job("beijing", sensitivity=MEDIUM), s, Window(now_s=0.0), f, book)  # type: ignore[arg-type]
    assert isinstance(medium, TimedDecision)
    assert (medium.cluster, medium.start_s) == ("zhangjiakou", 0.0)
    windowed = yielding.plan(job("beijing", sensitivity=MEDIUM), s,  # type: ignore[arg-type]
                             Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H), f, book)  # fmt: skip
    assert isinstance(windowed, TimedDecision)
    assert not np.isfinite(windowed.totals[0, 1])


def test_room_a_known_end_frees_counts_on_a_book_without_promises() -> None:
    # qingyang runs 62 of its 64 cpu until 1.5 h (a release from slot 2 on), nothing is
    # promised. A 4-cpu, 2 h job cannot start there now (2 free) but can in the valley
    # (3 h-5 h: 210 g/kWh, 2 + 62 free); without the release it would find no room there.
    s = state(
        cluster("qingyang", carbon=477, price=0.5, used_cpu=62),
        cluster("zhangjiakou", carbon=700, price=0.5, region=Region.EAST),
    )
    f = fleet_forecast(VALLEY, FLAT_700)
    book = ReservationBook(clusters=2, resources=len(s.resources))
    amounts = np.zeros(len(s.resources))
    amounts[s.resource_index["cpu"]] = 62.0
    book.add_release(Reservation("running", 0, TYPE_CODES[job().compute_type], 1.5 * H,
                                 1.5 * H, amounts))  # fmt: skip
    assert len(book) == 0  # no promise: only the release
    window = Window(now_s=0.0, duration_s=2 * H, deadline_s=10 * H)
    d = TimeScheduler().plan(job("beijing"), s, window, f, book)
    assert isinstance(d, TimedDecision)
    assert (d.cluster, d.start_s) == ("qingyang", 3 * H)
    assert not np.isfinite(d.totals[:2, 0]).any()  # slots 0 and 1: the 62 cpu still busy
    book.remove_release("running")
    alone = TimeScheduler().plan(job("beijing"), s, window, f, book)
    assert isinstance(alone, TimedDecision) and alone.cluster == "zhangjiakou"


def test_reservation_book_peak() -> None:
    book = ReservationBook(clusters=1, resources=1)
    book.add(Reservation("a", 0, 0, 1 * H, 3 * H, np.array([10.0])))
    book.add(Reservation("b", 0, 0, 2.5 * H, 4 * H, np.array([5.0])))
    # slots: 1 → 10, 2 → 15 (both touch it), 3 → 5.
    peaks = book.peak(0, np.array([0.0, 1 * H, 3 * H, 4 * H]), 1 * H)
    assert peaks[:, 0, 0].tolist() == [0.0, 10.0, 5.0, 0.0]
    assert book.peak(0, np.array([0.0]), 4 * H)[0, 0, 0] == 15.0
    assert book.peak(1, np.array([0.0]), 4 * H)[0, 0, 0] == 0.0  # another compute type
    book.remove("a")
    book.remove("b")
    assert len(book) == 0 and not book._slots
    with pytest.raises(ValueError, match="already"):
        book.add(Reservation("c", 0, 0, 0, H, np.array([1.0])))
        book.add(Reservation("c", 0, 0, 0, H, np.array([1.0])))


def test_fleet_forecast_resamples_and_agrees_with_forecast_mean() -> None:
    a = Forecast(0.0, np.array([10.0, 20, 30]), np.array([10.0, 20, 30]), np.zeros(3),
                 np.ones(3))  # fmt: skip
    b = Forecast(-H, np.array([5.0, 6, 7, 8]), np.array([5.0, 6, 7, 8]), np.zeros(4),
                 np.ones(4))  # fmt: skip
    ff = FleetForecast.of([a, b], now_s=0.5 * H, hours=5)
    assert ff.start_s == 0.0
    # a: 10 20 30 then its mean 20; b from 0 h: 6 7 8 then its mean 6.5.
    assert ff.series["carbon"][:, 0].tolist() == [10, 20, 30, 20, 20]
    assert ff.series["carbon"][:, 1].tolist() == [6, 7, 8, 6.5, 6.5]
    starts = np.array([0.5 * H, 1.0 * H])
    got = ff.mean_over("carbon", starts, 1.5 * H)[:, 0]
    np.testing.assert_allclose(got, a.mean_over("carbon", starts, 1.5 * H))


# -- properties ------------------------------------------------------------------------------

BUDGET = {HIGH: 5.0, MEDIUM: 20.0, LOW: float("inf")}
series = st.lists(st.floats(50, 900), min_size=48, max_size=48)


@settings(max_examples=150, deadline=None)
@given(
    carbon=st.tuples(series, series, series),
    now_h=st.floats(0, 5),
    duration_h=st.floats(0.25, 12),
    slack_h=st.floats(-3, 30),
    sensitivity=st.sampled_from(list(LatencySensitivity)),
    origin=st.sampled_from(["beijing", "shanghai", "chengdu"]),
    promised_cpu=st.floats(0, 64),
)
def test_never_after_the_latest_start_never_over_budget(
    carbon: tuple[list[float], ...],
    now_h: float,
    duration_h: float,
    slack_h: float,
    sensitivity: LatencySensitivity,
    origin: str,
    promised_cpu: float,
) -> None:
    s = state(
        cluster("chengdu", carbon=400),
        cluster("qingyang", carbon=477),
        cluster("zhangjiakou", carbon=700, region=Region.EAST),
    )
    f = fleet_forecast(*carbon)
    now = now_h * H
    window = window_for(sensitivity, now, duration_s=duration_h * H,
                        deadline_s=now + (duration_h + slack_h) * H)  # fmt: skip
    book = ReservationBook(s.size, len(s.resources))
    amounts = np.zeros(len(s.resources))
    amounts[s.resource_index["cpu"]] = promised_cpu
    book.add(Reservation("x", 1, 0, now, now + 6 * H, amounts))
    j = job(origin, sensitivity=sensitivity, memory_gi=8)
    result = TimeScheduler().plan(j, s, window, f, book)
    if not isinstance(result, TimedDecision):
        return
    assert result.start_s >= now
    if not window.late and window.latest_start_s is not None:
        assert result.start_s <= window.latest_start_s + 1e-6  # never after deadline − duration
    if sensitivity is HIGH or slack_h <= 0:
        assert result.start_s == now
    assert s.latency_from(origin)[result.index] <= BUDGET[sensitivity]
    # Promised capacity honoured over the chosen run.
    overlap = result.start_s < now + 6 * H and result.start_s + duration_h * H > now
    if result.index == 1 and overlap:
        assert 64 - promised_cpu >= 4 - 1e-9
    # Never worse than the best start-now option by the policy's own score.
    assert result.score >= float(np.max(result.totals[0])) - 1e-9
    assert j.pod_resources["memory"] == 8 * GIB


def test_releases_count_from_the_next_whole_hour() -> None:
    book = ReservationBook(clusters=1, resources=1)
    book.add(Reservation("p", 0, 0, 0.0, 4 * H, np.array([10.0])))  # slots 0-3: 10
    book.add_release(Reservation("r", 0, 0, 1.5 * H, 1.5 * H, np.array([6.0])))  # ends 1.5 h
    # Net promised: slot 0 → 10, 1 → 10 (the job still runs), 2 and 3 → 10 − 6 = 4.
    peaks = book.peak(0, np.array([0.0, 2 * H]), 1 * H)[:, 0, 0]
    assert peaks.tolist() == [10.0, 4.0]
    book.remove_release("r")  # the job ended: its capacity is free, live, no longer counted
    assert book.peak(0, np.array([2 * H]), 1 * H)[0, 0, 0] == 10.0
    with pytest.raises(ValueError, match="already has a release"):
        book.add_release(Reservation("q", 0, 0, H, H, np.array([1.0])))
        book.add_release(Reservation("q", 0, 0, H, H, np.array([1.0])))
