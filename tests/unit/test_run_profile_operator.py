"""The operator learns how long work runs from the jobs that succeed, and scores a job without
a window over the run such work makes (issue 9, session 14): its own parts, no API server."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.placer_parts import QINGYANG, P, parts

from bad_manifests import computejob_manifests
from computegrid.api import (
    GPU,
    ComputeType,
    LatencySensitivity,
    parse_quantity,
    restricted_template,
)
from computegrid.fleet import Fleet
from computegrid.fleet.forecasts import MemberForecast
from computegrid.handlers import metrics
from computegrid.handlers.controller import Controller
from computegrid.handlers.placement import InvalidJob, parse_job, shape_of_body, to_request
from computegrid.handlers.placer import Placer
from computegrid.lifecycle.machine import rfc3339_of
from computegrid.scheduling import Decision
from computegrid.scheduling.forecast import HOUR_S, Forecast
from computegrid.scheduling.run_profile import shape_of

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
    # Listed already finished (never read here): counted too, its shape read from its body.
    controller.observe("MODIFIED", finished("restarted", 6 * HOUR_S))
    controller.observe("MODIFIED", finished("done-19", 6 * HOUR_S))  # counted once
    assert metrics.RUN_PROFILE_RUNS._value.get() - learned == 21
    # Such work runs 6 h: tianfu's green hour ends in 10 min, then 800 g/kWh; qingyang's 300.
    third = placed(controller, placer, "third")
    assert third.cluster.name == QINGYANG
    assert third.reasons()[0] == (
        "power figures averaged over the run such work makes: 6.0 h on average over the last "
        "21 runs of its shape"
    )


def test_a_restarted_operator_learns_from_the_jobs_its_start_lists_finished(
    parts: tuple[Fleet, Controller, Placer],
) -> None:
    # A fresh operator (nothing learned) whose start lists the hub: 20 jobs of the shape
    # succeeded before it started, in no particular order, none of them read here.
    fleet, controller, placer = parts
    forecasts(fleet)
    assert placed(controller, placer, "before").cluster.name == TIANFU  # nothing learned
    controller.observe_all([finished(f"old-{i}", 6 * HOUR_S) for i in reversed(range(20))])
    assert all(controller.jobs[f"old-{i}"].spec is None for i in range(20))  # kept small
    assert all(controller.jobs[f"old-{i}"]._request is None for i in range(20))  # no parse
    # The 21st job of the shape is scored over the runs its start listed.
    after = placed(controller, placer, "after")
    assert after.cluster.name == QINGYANG
    assert after.reasons()[0] == (
        "power figures averaged over the run such work makes: 6.0 h on average over the last "
        "20 runs of its shape"
    )


# -- the shape of a finished job, read from its body without a parse ----------------------

SPELLINGS = st.sampled_from([str, str.upper, str.title, str.capitalize])
BLANKS = st.sampled_from(["", " ", "  ", "\t", "\n "])
GPU_QUANTITIES = st.one_of(
    st.integers(0, 64),
    st.floats(0.0, 16.0, allow_nan=False),
    st.sampled_from(["0", "1", "4", "8", "500m", "1e1", "2.5", " 2 ", "1k", "+3", "0.5E1"]),
)


@st.composite
def valid_job_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A ComputeJob the operator accepts: compute type, latency class and GPUs drawn (each
    also absent), spelled as the API admits them, with resources besides the GPU or not."""
    annotations = {"computegrid.io/origin": "shanghai"}
    if draw(st.booleans()):
        klass = draw(SPELLINGS)(draw(st.sampled_from([s.value for s in LatencySensitivity])))
        annotations["computegrid.io/latency-sensitivity"] = draw(BLANKS) + klass + draw(BLANKS)
    resources: dict[str, Any] = {}
    if draw(st.booleans()):
        resources[GPU] = draw(GPU_QUANTITIES)
    if parse_quantity(resources.get(GPU, 0)) == 0 or draw(st.booleans()):  # one above zero
        resources.update(cpu=draw(st.sampled_from(["1", "250m", 8])), memory="1Gi")
    spec: dict[str, Any] = {"resources": resources, "template": restricted_template("busybox")}
    if draw(st.booleans()):
        spec["computeType"] = draw(st.sampled_from([c.value for c in ComputeType]))
    return {
        "metadata": {"namespace": "team-a", "name": "job", "annotations": annotations},
        "spec": spec,
        "status": {"phase": "Succeeded"},
    }


def parsed_shape(body: dict[str, Any]) -> object:
    try:
        return shape_of(to_request(parse_job(body)))
    except InvalidJob:
        return None


@settings(max_examples=400, deadline=None)
@given(valid_job_bodies())
def test_the_shape_read_from_a_body_is_the_shape_of_its_request(body: dict[str, Any]) -> None:
    assert parsed_shape(body) is not None  # the generator makes jobs the operator accepts
    assert shape_of_body(body) == parsed_shape(body)


@settings(max_examples=400, deadline=None)
@given(computejob_manifests())
def test_a_body_the_operator_accepts_has_the_shape_of_its_request(
    manifest: dict[str, Any],
) -> None:
    # Malformed and hostile edits too (computeType "Intelligent", latency class "HIGH" or
    # "", GPUs "1e100" ...): whatever the parse accepts reads to the same shape.
    expected = parsed_shape(manifest)
    if expected is not None:
        assert shape_of_body(manifest) == expected


@pytest.mark.parametrize(
    "garble",
    [
        lambda b: b.pop("spec"),
        lambda b: b["spec"].pop("resources"),
        lambda b: b["spec"].update(resources="8"),
        lambda b: b["spec"].update(computeType="quantum"),
        lambda b: b["spec"].update(computeType=["general"]),
        lambda b: b["metadata"].update(annotations="low"),
        lambda b: b["metadata"]["annotations"].update({"computegrid.io/latency-sensitivity": 3}),
        lambda b: b["metadata"]["annotations"].update({"computegrid.io/latency-sensitivity": ""}),
        lambda b: b["spec"]["resources"].update({GPU: "-1"}),
        lambda b: b["spec"]["resources"].update({GPU: "four"}),
        lambda b: b["spec"]["resources"].update({GPU: "1e99999999999"}),
        lambda b: b["spec"]["resources"].update({GPU: float("inf")}),
        lambda b: b["spec"]["resources"].update({GPU: True}),
        lambda b: b["spec"]["resources"].update({GPU: {"limit": 1}}),
    ],
)
def test_a_body_with_a_missing_or_garbled_field_has_no_shape(garble: Any) -> None:
    job = body("u1", {"phase": "Succeeded"})
    assert shape_of_body(job) == ("general", "low", 0.0)
    garble(job)
    assert shape_of_body(job) is None
