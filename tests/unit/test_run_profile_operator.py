"""The operator learns how long work runs from the jobs that succeed, and scores a job without
a window over the run such work makes (issue 9, session 14): its own parts, no API server."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from tests.unit.placer_parts import QINGYANG, P, parts

from computegrid.api import restricted_template
from computegrid.fleet import Fleet
from computegrid.fleet.forecasts import MemberForecast
from computegrid.handlers import metrics
from computegrid.handlers.controller import Controller
from computegrid.handlers.placer import Placer
from computegrid.lifecycle.machine import rfc3339_of
from computegrid.scheduling import Decision
from computegrid.scheduling.forecast import HOUR_S, Forecast

__all__ = ["parts"]  # the fixture, used by name
TIANFU = "chengdu-chongqing-tianfu"


def forecasts(fleet: Fleet) -> None:
    """From the hour before P (the operator's clock is in it): tianfu 50 g/kWh in that hour and
    800 after; gansu-qingyang 300 and chongqing 600 throughout; the same renewable share and
    price everywhere. On the labels tianfu is the greenest (140 g/kWh, 87 % renewable)."""
    series = {
        TIANFU: np.where(np.arange(48) == 0, 50.0, 800.0),
        QINGYANG: np.full(48, 300.0),
        "chengdu-chongqing-chongqing": np.full(48, 600.0),
    }
    for name, carbon in series.items():
        forecast = Forecast(
            P - HOUR_S, carbon, carbon.copy(), np.full(48, 0.3), np.full(48, 0.4), "ConfigMap"
        )
        fleet.members[name].forecast = MemberForecast(forecast, True, "Current", "")


def body(uid: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A low-class job from Chengdu without a window (starts now)."""
    return {
        "metadata": {
            "uid": uid, "namespace": "team-a", "name": f"job-{uid}", "generation": 1,
            "resourceVersion": "2" if status else "1",
            "creationTimestamp": "2026-11-29T00:00:00Z",
            "annotations": {"computegrid.io/origin": "chengdu",
                            "computegrid.io/latency-sensitivity": "low"},
        },
        "spec": {"resources": {"cpu": "2", "memory": "1Gi"},
                 "template": restricted_template("busybox", restartPolicy="Never")},
        "status": status or {},
    }  # fmt: skip


def placed(controller: Controller, placer: Placer, uid: str) -> Decision:
    controller.observe("ADDED", body(uid))
    placer.add(controller.jobs[uid])
    placer._drain()
    decision = controller.decided.pop(uid)
    assert isinstance(decision, Decision)
    return decision


def finished(uid: str, run_s: float) -> dict[str, Any]:
    start = P - 30 * HOUR_S
    status = {"phase": "Succeeded", "startTime": rfc3339_of(start),
              "completionTime": rfc3339_of(start + run_s)}  # fmt: skip
    return copy.deepcopy(body(uid, status))


def succeeded(controller: Controller, uid: str, run_s: float) -> None:
    """A job this operator placed (its request read) succeeds after ``run_s``."""
    controller.observe("ADDED", body(uid))
    controller.jobs[uid].request(controller.pod_policy)
    controller.observe("MODIFIED", finished(uid, run_s))


def test_runs_that_succeed_move_jobs_without_a_window_off_a_passing_green_hour(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    fleet, controller, placer = parts
    forecasts(fleet)
    learned = metrics.RUN_PROFILE_RUNS._value.get()
    # Nothing learned yet: the figures of now, as before (tianfu's labels).
    first = placed(controller, placer, "first")
    assert first.cluster.name == TIANFU and first.basis == ()  # no word of a run profile
    for i in range(19):
        succeeded(controller, f"done-{i}", 6 * HOUR_S)
    assert placed(controller, placer, "second").cluster.name == TIANFU  # 19: too few to say
    succeeded(controller, "done-19", 6 * HOUR_S)
    controller.observe("MODIFIED", finished("restarted", 6 * HOUR_S))  # never read: not counted
    controller.observe("MODIFIED", finished("done-19", 6 * HOUR_S))  # counted once
    assert metrics.RUN_PROFILE_RUNS._value.get() - learned == 20
    # Such work runs 6 h: tianfu's green hour ends in 10 min, then 800 g/kWh; qingyang's 300.
    third = placed(controller, placer, "third")
    assert third.cluster.name == QINGYANG
    assert third.reasons()[0] == (
        "power figures averaged over the run such work makes: 6.0 h on average over the last "
        "20 runs of its shape"
    )
