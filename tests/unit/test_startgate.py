"""When a restart may place its first job (handlers/startgate.py): as soon as every member
listed at start is probed and its Jobs listed (and, Ready, its forecast read); never earlier
for a member that is only slow; a member that answered and is down is waited for at most
DOWN_WAIT_S; and the start's steps are logged in order with the first member Job."""

from __future__ import annotations

import asyncio
import logging

import pytest

from computegrid.api import MemberClusterSpec
from computegrid.fleet import Capacity, Fleet, HubWriter, MemberState
from computegrid.fleet.forecasts import member_forecast
from computegrid.fleet_data import load_latency_model
from computegrid.handlers import startclock
from computegrid.handlers.controller import Controller
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.placer import Placer
from computegrid.handlers.startgate import DOWN_WAIT_S, LIMIT_S, StartGate, judge
from computegrid.scheduling import PowerMix, Scheduler

SPEC = MemberClusterSpec.model_validate(
    {"hub": "gansu", "region": "west", "location": "qingyang", "kubeconfigSecretRef": {"name": "a"}}
)


def member(name: str, **state: object) -> MemberState:
    made = MemberState(name, SPEC)
    for key, value in state.items():
        setattr(made, key, value)
    return made


def no_configmap(cluster: str, namespace: str, name: str) -> None:
    raise AssertionError("a Flat forecast reads no ConfigMap")


# SPEC names no forecast source: the node labels' flat figures, as a first refresh finds them.
FLAT = member_forecast(SPEC, PowerMix(0.4, 500.0, 0.5), 0.0, no_configmap)
KNOWN = {"probed": True, "ready": True, "synced": True, "forecast": FLAT}


def test_opens_as_soon_as_every_member_is_probed_and_listed() -> None:
    members = {"a": member("a", **KNOWN), "b": member("b", probed=True, ready=True, forecast=FLAT)}
    assert not judge({"a", "b"}, members, set(), 0.5).open
    members["b"].synced = True
    verdict = judge({"a", "b"}, members, set(), 0.5)
    assert verdict.open and verdict.probed and verdict.synced and verdict.why == ""


def test_a_ready_member_is_known_once_its_forecast_is_read() -> None:
    """Probed Ready and its Jobs listed, its forecast not yet read (the refresh after the
    probe): a job placed now would be scored on the labels' flat figures, not its forecast.
    A member that is not Ready is placed on by no one: its forecast is not waited for."""
    members = {"a": member("a", **KNOWN), "b": member("b", **{**KNOWN, "forecast": None})}
    assert not judge({"a", "b"}, members, set(), 0.5).open
    members["b"].forecast = FLAT
    assert judge({"a", "b"}, members, set(), 0.5).open
    members["b"].forecast, members["b"].ready = None, False
    assert judge({"a", "b"}, members, set(), DOWN_WAIT_S).open  # down: the down bound only


def test_a_slow_healthy_member_is_waited_for_past_the_down_bound() -> None:
    """Probed fine, its Job list still in flight: placing now could miss a Job it runs."""
    members = {"a": member("a", **KNOWN), "b": member("b", probed=True, ready=True)}
    assert not judge({"a", "b"}, members, set(), DOWN_WAIT_S * 3).open
    assert not judge({"a", "b"}, {"a": members["a"]}, set(), DOWN_WAIT_S * 3).open  # no daemon yet
    verdict = judge({"a", "b"}, members, set(), LIMIT_S)
    assert verdict.open and "members not known: b" in verdict.why


@pytest.mark.parametrize(
    "down",
    [{"probed": True, "ready": False}, {"probed": True, "ready": True, "watch_error": "403"}],
    ids=["probe-failed", "job-list-failed"],
)
def test_a_member_that_answered_down_is_waited_for_at_most_the_down_bound(
    down: dict[str, object],
) -> None:
    members = {"a": member("a", **KNOWN), "b": member("b", **down)}
    assert not judge({"a", "b"}, members, set(), DOWN_WAIT_S - 0.1).open
    verdict = judge({"a", "b"}, members, set(), DOWN_WAIT_S)
    assert verdict.open and verdict.why == "members down: b"


def test_an_unusable_member_never_holds_the_gate() -> None:
    verdict = judge({"a", "bad"}, {"a": member("a", **KNOWN)}, {"bad"}, 0.0)
    assert verdict.open and verdict.probed and verdict.synced


def test_the_gate_stays_open_once_open() -> None:
    gate = StartGate(expected={"a"})
    members = {"a": member("a", **KNOWN)}
    assert gate.check(members, set()).open
    members["a"].synced = False  # a later watch failure is the state machine's business
    assert gate.opened


def test_the_placer_waits_for_news_not_a_poll_and_logs_the_steps_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A waiting job is decided the moment the last member's Job list is in, and the steps a
    start noted are in order: probed and synced before known before the first decision."""
    clock = startclock.CLOCK  # the process's own: a fresh start for this test
    clock.at.clear()
    clock.members.clear()
    fleet = Fleet(None, hub_name="h")
    controller = Controller(
        OperatorOptions(), fleet, Capacity(load_latency_model()), HubWriter(None)
    )  # type: ignore[arg-type]
    placer = Placer(controller, Scheduler())
    placer.gate.expected = {"a"}
    state = fleet.register("a", SPEC, {})

    async def scenario() -> list[str]:
        placer.start()
        placer.wake.set()
        await asyncio.sleep(0.05)
        assert "members_known" not in clock.at  # no member news yet: the gate is shut
        state.probed = state.ready = True
        state.forecast = FLAT  # read after the probe, before its news (handlers/members.py)
        placer.member_news("a", "probed")
        await asyncio.sleep(0.05)
        assert "members_known" not in clock.at
        state.synced = True
        placer.member_news("a", "synced")
        await asyncio.sleep(0.05)
        await placer.stop()
        return list(clock.at)

    with caplog.at_level(logging.INFO):
        steps = asyncio.run(scenario())
    assert steps == ["members_probed", "members_synced", "members_known"]
    assert set(clock.members["a"]) == {"probed", "synced"}
    assert clock.members["a"]["probed"] <= clock.members["a"]["synced"]
    fleet.close()


def test_members_never_listed_hold_the_gate_until_the_limit() -> None:
    """The start could not list the MemberClusters: who to wait for is unknown, so no
    member's news opens the gate; only the placer's own listing or the limit does."""
    gate = StartGate()
    members = {"a": member("a", **KNOWN)}
    assert not gate.check(members, set()).open
    gate.started -= LIMIT_S
    verdict = gate.check(members, set())
    assert verdict.open and verdict.why == "the MemberClusters never listed"


def test_the_placer_lists_the_members_itself_when_the_start_could_not() -> None:
    """No hub client here: the placer knows there is nothing to list and opens at once."""
    fleet = Fleet(None, hub_name="h")
    controller = Controller(
        OperatorOptions(), fleet, Capacity(load_latency_model()), HubWriter(None)
    )  # type: ignore[arg-type]
    placer = Placer(controller, Scheduler())
    assert placer.gate.expected is None
    asyncio.run(asyncio.wait_for(placer._await_members(), 5.0))
    assert placer.gate.expected == set() and placer.gate.opened
    fleet.close()
