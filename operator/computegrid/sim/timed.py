"""``computegrid-timed``: the operator's time-aware core (``TimeScheduler``) in the replay.

Each decision plans (cluster, start) with the Builtin forecast, which in the simulator *is*
the power curve the metrics integrate (a perfect forecast: the figures are an upper bound on
what a real forecast's errors would allow). A job with a window (``SimJob.deadline_s``)
declares its exact run time, so the planner also knows when its capacity comes back (a
release in the book); a job without one starts now, its duration unknown to the planner: it
honours promises over its first hour and holds its capacity for all the planner knows. A
deferred job's
capacity goes into the ``ReservationBook`` until its start, when the engine releases it and
starts the job on the planned cluster (or, if the exact per-node fit fails there, plans it
again from that moment).
"""

from __future__ import annotations

import numpy as np

from computegrid.fleet_data.power import HOURS, PowerCurves
from computegrid.scheduling import (
    DEFAULT_POLICY,
    FleetForecast,
    FleetState,
    JobRequest,
    Policy,
    Reservation,
    ReservationBook,
    TimedDecision,
    TimeScheduler,
    Window,
    window_for,
)
from computegrid.scheduling.capacity_price import CapacityPrices, CongestionPrice
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.run_profile import RunProfile
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.trace import SimJob

FORECAST_HOURS = 96  # the 48 h planning horizon plus the longest run (24 h), with room


class ComputegridTimed:
    """Plans (cluster, start); ``choose`` is its start-now answer (for the queue)."""

    name = "computegrid-timed"

    def __init__(
        self,
        curves: PowerCurves,
        policy: Policy = DEFAULT_POLICY,
        *,
        rolling: bool = False,
        prices: CapacityPrices | None = None,
        congestion: CongestionPrice | None = None,
        unknown_run_h: float = 1.0,
        run_profile: RunProfile | None = None,
    ) -> None:
        self.name = "computegrid-timed-rolling" if rolling else "computegrid-timed"
        if prices is not None:
            self.name = "computegrid-priced"
        if congestion is not None:
            self.name = "computegrid-congestion"
        self.curves = curves
        self.planner = TimeScheduler(
            policy,
            prices=prices,
            congestion=congestion,
            unknown_run_h=unknown_run_h,
            run_profile=run_profile,
        )
        # Running job → (its request, its start), for the profile when it finishes.
        self.run_profile = run_profile
        self._running: dict[int, tuple[JobRequest, float]] = {}
        self.book: ReservationBook | None = None
        self._forecast: tuple[int, FleetForecast] | None = None
        self.rolling = rolling  # re-plan held jobs every hour (``replan``)
        self.scores: dict[int, float] = {}  # held job → the score of its promise
        # Running windowed jobs give their room back at their declared end in the book (so
        # does the operator since session 12; computegrid-timed-joint-whole, its mirror of
        # session 11, counts none).
        self.releases = True
        self.deferred = 0
        self.replans = 0

    def forecast(self, now_s: float) -> FleetForecast:
        """The curves from the current replay hour, as the operator's forecast would be."""
        hour = int(now_s // HOUR_S)
        if self._forecast is None or self._forecast[0] != hour:
            rows = (self.curves.start_hour + hour + np.arange(FORECAST_HOURS)) % HOURS
            self._forecast = (
                hour,
                FleetForecast(
                    hour * HOUR_S,
                    self.curves.carbon[rows],
                    self.curves.carbon_market[rows],
                    self.curves.renewable[rows],
                    self.curves.price[rows],
                ),
            )
        return self._forecast[1]

    def decide(self, job: SimJob, state: FleetState, now_s: float) -> TimedDecision | None:
        if self.book is None:
            self.book = ReservationBook(state.size, len(state.resources))
        window = self.window(job, now_s)
        result = self.planner.plan(job.request, state, window, self.forecast(now_s), self.book)
        return result if isinstance(result, TimedDecision) else None

    def window(self, job: SimJob, now_s: float) -> Window:
        """The job's window from now: its deadline, and its run time when it declares one."""
        windowed = job.deadline_s is not None
        return window_for(
            job.request.sensitivity,
            now_s,
            deadline_s=job.deadline_s,
            duration_s=job.duration_s if windowed else None,
        )

    def plan(
        self, key: int, job: SimJob, state: FleetState, now_s: float
    ) -> tuple[int, float] | None:
        """(cluster, start) or None (wait); a start after now is a promise in the book."""
        result = self.decide(job, state, now_s)
        if result is None:
            return None
        if result.deferred:
            self.promise(key, job.request, state, result.index, result.start_s, job.duration_s)
            self.scores[key] = result.score
        return result.index, result.start_s

    def replan(
        self, key: int, job: SimJob, state: FleetState, now_s: float
    ) -> tuple[int, float] | None:
        """A held job asked again at a later hour: its new (cluster, start) when that scores
        better than its promise (capacity may have freed since), else None (promise kept).

        Its own promise is lifted while it plans, so it competes only with the others. The
        plan on the books stays valid whatever the planner now thinks of it (the capacity
        was promised), so only a strictly better score moves it."""
        if not self.rolling or self.book is None:
            return None
        old = self.book.remove(str(key))
        if old is None:
            return None
        result = self.decide(job, state, now_s)
        if result is None or result.score <= self.scores[key] + 1e-6:
            self.book.add(old)
            return None
        self.replans += 1
        if result.deferred:
            self.book.add(Reservation(str(key), result.index, old.compute_type_code,
                                      result.start_s, result.start_s + job.duration_s,
                                      old.amounts))  # fmt: skip
            self.scores[key] = result.score
        else:
            del self.scores[key]
        return result.index, result.start_s

    def promise(
        self, key: int, job: JobRequest, state: FleetState, cluster: int, start: float, run: float
    ) -> None:
        assert self.book is not None
        vector = state.request_vector(job)
        assert vector is not None
        self.book.add(
            Reservation(str(key), cluster, TYPE_CODES[job.compute_type], start, start + run,
                        job.parallelism * vector)
        )  # fmt: skip
        self.deferred += 1

    def release(self, key: int) -> None:
        self.scores.pop(key, None)
        if self.book is not None:
            self.book.remove(str(key))

    def started(self, key: int, job: SimJob, state: FleetState, cluster: int, end_s: float) -> None:
        """A windowed job's capacity is expected back at its end (it declared its duration);
        a job without a window holds its capacity for all the planner knows."""
        if self.run_profile is not None:
            self._running[key] = (job.request, end_s - job.duration_s)
        if self.book is None or job.deadline_s is None or not self.releases:
            return
        vector = state.request_vector(job.request)
        assert vector is not None
        code = TYPE_CODES[job.request.compute_type]
        amounts = job.request.parallelism * vector
        self.book.add_release(Reservation(str(key), cluster, code, end_s, end_s, amounts))

    def finished(self, key: int, now_s: float) -> None:
        """The job ended at ``now_s``: its run joins the profile of its shape."""
        ran = self._running.pop(key, None)
        if ran is not None and self.run_profile is not None:
            self.run_profile.record(ran[0], now_s - ran[1])
        if self.book is not None:
            self.book.remove_release(str(key))

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        raise NotImplementedError("the engine calls plan() on a time-aware placer")
