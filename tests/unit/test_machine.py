"""The dispatch state machine, table by table: (recorded status, what the members show) →
(status patch, actions). Every row is one promise of docs/operator.md's failover table."""

from __future__ import annotations

from typing import Any

import pytest

from computegrid.api import FailoverPolicy
from computegrid.lifecycle import Copy, Do, Health, Member, Room, Situation, machine

NOW = "2026-11-29T12:00:00Z"
REMOTE = {"cluster": "a", "namespace": "t", "name": "cg-j", "attempt": 1}
DISPATCHED = [{"type": "Dispatched", "status": "True", "reason": "Created"}]
DISPATCHING = [{"type": "Dispatched", "status": "False", "reason": "Dispatching"}]


def copy(cluster: str = "a", phase: str = "Running", attempt: int = 1, **kw: Any) -> Copy:
    return Copy(cluster, "t", "cg-j", f"k-{cluster}", attempt, phase, **kw)


UNKNOWN = Member(Health.UNKNOWN)


def situation(
    status: dict[str, Any],
    member: Member = UNKNOWN,
    *,
    policy: FailoverPolicy = FailoverPolicy.IF_NOT_STARTED,
    grace: float = 300.0,
    stale: dict[str, Member] | None = None,
    others: tuple[Copy, ...] = (),
    generation: int = 1,
) -> Situation:
    return Situation(status, generation, policy, grace, NOW, member, stale or {}, others)


def kinds(step: machine.Step) -> list[str]:
    return [a.do.value if a.do != Do.EVENT else f"Event:{a.reason}" for a in step.actions]


def test_a_new_job_asks_for_placement_and_writes_nothing() -> None:
    step = machine.step(situation({}))
    assert (step.patch, kinds(step)) == ({}, ["Place"])


def test_placing_records_the_decision_first_then_creates() -> None:
    step = machine.placed(
        {"attempts": 1},
        NOW,
        cluster="b",
        namespace="t",
        name="cg-j",
        placement={"cluster": "b"},
        message="placed on b",
        generation=3,
    )
    assert step.conditional  # written with the resourceVersion it was decided on
    assert step.patch["remote"] == {"cluster": "b", "namespace": "t", "name": "cg-j", "attempt": 2}
    assert step.patch["attempts"] == 2 and step.patch["observedGeneration"] == 3
    dispatched = next(c for c in step.patch["conditions"] if c["type"] == "Dispatched")
    assert (dispatched["status"], dispatched["reason"]) == ("False", "Dispatching")
    assert kinds(step) == ["Event:Scheduled", "Create"]  # the create comes after the write
    assert step.actions[-1].attempt == 2


# (recorded status, member view) → expected action kinds, patch keys
RECORDED = {"phase": "Scheduled", "remote": REMOTE, "attempts": 1}


@pytest.mark.parametrize(
    ("status", "member", "actions", "patched"),
    [
        # Recorded, member answers and has no such Job (its watch is synced): create it.
        ({**RECORDED, "conditions": DISPATCHING}, Member(Health.READY), ["Create"], set()),
        # Recorded but the member is not synced yet (restart): wait, never guess.
        ({**RECORDED, "conditions": DISPATCHING}, Member(Health.UNKNOWN), [], set()),
        # Created: the member shows it running → Dispatched=True and Running, coalesced.
        (
            {**RECORDED, "conditions": DISPATCHING},
            Member(Health.READY, copy=copy(active=1, start_time="t0")),
            [],
            {"phase", "active", "succeeded", "failed", "message", "remote", "startTime",
             "conditions"},
        ),
        # Unreachable inside the grace period: nothing at all, not even a write.
        ({**RECORDED, "conditions": DISPATCHED}, Member(Health.UNREACHABLE, 299.0), [], set()),
        # A foreign Job has the name: refused for good, back to Pending.
        (
            {**RECORDED, "conditions": DISPATCHING},
            Member(Health.READY, foreign=True),
            ["Event:NameConflict"],
            {"phase", "message", "remote", "conditions"},
        ),
    ],
)  # fmt: skip
def test_recorded_jobs(
    status: dict[str, Any], member: Member, actions: list[str], patched: set[str]
) -> None:
    step = machine.step(situation(status, member))
    assert kinds(step) == actions
    assert set(step.patch) == patched


def test_mirroring_is_silent_when_nothing_changed() -> None:
    seen = copy(active=1, start_time="t0")
    first = machine.step(
        situation({**RECORDED, "conditions": DISPATCHING}, Member(Health.READY, copy=seen))
    )
    status = {**RECORDED, **first.patch}
    again = machine.step(situation(status, Member(Health.READY, copy=seen)))
    assert again.patch == {} and again.actions == ()


def test_only_progress_inside_a_phase_may_wait_for_the_next_write() -> None:
    pods = copy(phase="Scheduled", active=1, message="1 pods created, none running yet")
    created = machine.step(
        situation({**RECORDED, "conditions": DISPATCHING}, Member(Health.READY, copy=pods))
    )
    assert "phase" not in created.patch and created.progress  # Dispatched=True, pod counts
    ran = machine.step(
        situation({**RECORDED, "conditions": DISPATCHING}, Member(Health.READY, copy=copy()))
    )
    assert ran.patch["phase"] == "Running" and not ran.progress  # a phase: news
    counts = machine.step(
        situation({**RECORDED, **ran.patch}, Member(Health.READY, copy=copy(active=2, succeeded=1)))
    )
    assert set(counts.patch) <= {"active", "succeeded", "message"} and counts.progress


def test_running_never_steps_back_to_scheduled() -> None:
    status = {**RECORDED, "phase": "Running", "conditions": DISPATCHED}
    step = machine.step(situation(status, Member(Health.READY, copy=copy(phase="Scheduled"))))
    assert step.patch.get("phase", "Running") == "Running"


def test_finished_copy_completes_the_job_then_gets_a_ttl() -> None:
    done = copy(phase="Succeeded", succeeded=1, completion_time="t1", message="1 pods succeeded")
    status = {**RECORDED, "phase": "Running", "conditions": DISPATCHED}
    step = machine.step(situation(status, Member(Health.READY, copy=done)))
    assert step.patch["phase"] == "Succeeded"
    assert kinds(step) == []  # the phase and Completed=True say it: no Event, one write less
    after = machine.step(situation({**status, **step.patch}, Member(Health.READY, copy=done)))
    assert kinds(after) == ["SetTTL"]  # only once the result is on the hub
    ttl_set = copy(phase="Succeeded", ttl=True)
    assert (
        machine.step(
            situation({**status, **step.patch}, Member(Health.READY, copy=ttl_set))
        ).actions
        == ()
    )


def test_a_failed_copy_warns() -> None:
    broke = copy(
        phase="Failed", failed=1, message="BackoffLimitExceeded: Job has reached the limit"
    )
    status = {**RECORDED, "phase": "Running", "conditions": DISPATCHED}
    step = machine.step(situation(status, Member(Health.READY, copy=broke)))
    assert step.patch["phase"] == "Failed"
    assert kinds(step) == ["Event:Failed"]
    assert step.actions[0].kind == "Warning" and step.actions[0].message == broke.message


# Failover: member unreachable past the grace period (600 s > 300 s).
LOST = Member(Health.UNREACHABLE, 600.0)
NOT_STARTED = {**RECORDED, "conditions": DISPATCHED}
STARTED = {**RECORDED, "phase": "Running", "startTime": "t0", "conditions": DISPATCHED}


@pytest.mark.parametrize(
    ("policy", "status", "moves"),
    [
        (FailoverPolicy.NEVER, NOT_STARTED, False),  # at most once: wait
        (FailoverPolicy.NEVER, STARTED, False),
        (FailoverPolicy.IF_NOT_STARTED, NOT_STARTED, True),  # never ran: safe to move
        (FailoverPolicy.IF_NOT_STARTED, STARTED, False),  # ran: would run twice
        (FailoverPolicy.ALWAYS, NOT_STARTED, True),  # at least once
        (FailoverPolicy.ALWAYS, STARTED, True),
    ],
)
def test_failover_table(policy: FailoverPolicy, status: dict[str, Any], moves: bool) -> None:
    step = machine.step(situation(status, LOST, policy=policy))
    assert step.conditional
    if moves:
        assert step.patch["remote"] is None and step.patch["phase"] == "Pending"
        assert step.patch["staleCopies"] == [REMOTE]  # fenced when the member answers
        assert step.patch["reschedules"] == 1
        assert kinds(step) == ["Event:MemberLost", "Place"]
    else:
        assert "remote" not in step.patch and "Place" not in kinds(step)
        assert "waiting" in step.patch["message"]
        # the wait is written once, not on every look
        again = machine.step(situation({**status, **step.patch}, LOST, policy=policy))
        assert again.patch == {} and again.actions == ()


def test_the_job_grace_period_decides() -> None:
    short = machine.step(situation(NOT_STARTED, LOST, grace=900.0))
    assert short.patch == {}  # 600 s down, 900 s allowed


def test_a_removed_member_fails_a_job_that_may_not_move() -> None:
    step = machine.step(situation(STARTED, Member(Health.REMOVED, 1.0), grace=0.0))
    assert step.patch["phase"] == "Failed"


@pytest.mark.parametrize(
    ("policy", "status", "phase"),
    [
        (FailoverPolicy.NEVER, NOT_STARTED, "Failed"),
        (FailoverPolicy.IF_NOT_STARTED, STARTED, "Failed"),
        (FailoverPolicy.IF_NOT_STARTED, NOT_STARTED, "Pending"),  # placed again
        (FailoverPolicy.ALWAYS, STARTED, "Pending"),
    ],
)
def test_a_vanished_job(policy: FailoverPolicy, status: dict[str, Any], phase: str) -> None:
    step = machine.step(situation(status, Member(Health.READY), policy=policy))
    assert step.patch["phase"] == phase
    assert any(c.get("reason") == "RemoteJobLost" for c in step.patch["conditions"])
    if phase == "Pending":
        assert step.patch["staleCopies"] == []  # nothing left to fence
        assert "Place" in kinds(step)


# Stale copies: suspended then deleted when their member answers again.
MOVED = {
    "phase": "Running",
    "remote": {**REMOTE, "cluster": "b", "attempt": 2},
    "attempts": 2,
    "startTime": "t0",
    "staleCopies": [REMOTE],
    "conditions": DISPATCHED,
}
B_RUNNING = Member(Health.READY, copy=copy("b", attempt=2, active=1))


def test_a_stale_copy_waits_while_its_member_is_down() -> None:
    step = machine.step(situation(MOVED, B_RUNNING, stale={"a": LOST}))
    assert "Suspend" not in kinds(step) and "staleCopies" not in step.patch


def test_a_stale_running_copy_is_suspended_then_deleted() -> None:
    stale = {"a": Member(Health.READY, copy=copy("a", active=1))}
    step = machine.step(situation(MOVED, B_RUNNING, stale=stale))
    assert kinds(step) == ["Suspend", "Delete"]
    assert [a.cluster for a in step.actions] == ["a", "a"]
    gone = machine.step(situation(MOVED, B_RUNNING, stale={"a": Member(Health.READY)}))
    assert gone.patch["staleCopies"] == []  # deleted: forgotten
    assert not gone.progress  # news, written at once: not held back with the pod counts


def test_a_stale_copy_that_succeeded_settles_the_job() -> None:
    done = copy("a", phase="Succeeded", succeeded=1, completion_time="t1")
    step = machine.step(situation(MOVED, B_RUNNING, stale={"a": Member(Health.READY, copy=done)}))
    assert step.conditional and step.patch["phase"] == "Succeeded"
    assert step.patch["remote"]["cluster"] == "a"
    assert step.patch["staleCopies"] == [{**REMOTE, "cluster": "b", "attempt": 2}]  # b is fenced


def test_a_stray_copy_of_an_older_attempt_is_fenced() -> None:
    stray = copy("c", attempt=1, active=1)
    step = machine.step(situation({**MOVED, "staleCopies": []}, B_RUNNING, others=(stray,)))
    assert kinds(step) == ["Suspend", "Delete"] and step.actions[0].cluster == "c"
    newer = copy("c", attempt=3, active=1)  # our cache is behind the hub: leave it alone
    step = machine.step(situation({**MOVED, "staleCopies": []}, B_RUNNING, others=(newer,)))
    assert "Delete" not in kinds(step)


def test_an_unrecorded_copy_is_adopted_not_duplicated() -> None:
    found = copy("c", attempt=1, active=1)
    step = machine.step(situation({}, others=(found,)))
    assert step.conditional and step.patch["remote"]["cluster"] == "c"
    assert kinds(step) == ["Event:Adopted"]  # no Place


def test_pending_is_written_only_when_its_reason_changes() -> None:
    first = machine.pending({}, NOW, "Unschedulable", "a: full")
    assert first.patch["phase"] == "Pending" and kinds(first) == ["Event:Unschedulable"]
    same = machine.pending({**first.patch}, NOW, "Unschedulable", "a: full")
    assert same.patch == {} and same.actions == ()
    # The same reason, a new diagnosis (room moved): no Event, and the write may wait.
    moved = machine.pending({**first.patch}, NOW, "Unschedulable", "a: 2 cores free")
    assert moved.patch["message"] == "a: 2 cores free" and moved.actions == ()
    assert moved.progress
    other = machine.pending({**first.patch}, NOW, "InvalidSpec", "spec.x: bad")
    assert kinds(other) == ["Event:InvalidSpec"] and not other.progress
    edited = machine.pending({**other.patch}, NOW, "InvalidSpec", "spec.y: bad")
    assert kinds(edited) == ["Event:InvalidSpec"] and not edited.progress  # news: at once


def test_a_spec_change_names_the_fields() -> None:
    old = machine.spec_digest({"parallelism": 1, "template": {"a": 1}})
    new = machine.spec_digest({"parallelism": 3, "template": {"a": 1}})
    status = {**RECORDED, "observedGeneration": 1, "specDigest": old, "conditions": DISPATCHED}
    member = Member(Health.READY, copy=copy(active=1))
    step = Situation(status, 2, FailoverPolicy.ALWAYS, 1.0, NOW, member, spec_digest=new)
    applied = next(c for c in machine.step(step).patch["conditions"] if c["type"] == "SpecApplied")
    assert applied["message"].startswith("spec.parallelism changed after dispatch")


def test_a_spec_change_after_dispatch_is_refused_once() -> None:
    status = {**RECORDED, "phase": "Running", "observedGeneration": 1, "conditions": DISPATCHED}
    member = Member(Health.READY, copy=copy(active=1, start_time="t0"))
    step = machine.step(situation(status, member, generation=2))
    assert "Event:SpecChangeRejected" in kinds(step)
    applied = next(c for c in step.patch["conditions"] if c["type"] == "SpecApplied")
    assert applied["message"].startswith("spec changed")  # no digest recorded: no names
    again = machine.step(situation({**status, **step.patch}, member, generation=2))
    assert "Event:SpecChangeRejected" not in kinds(again)


# -- Deferred: a windowed job planned for later (issue 9) ----------------------------------

START = "2026-11-29T13:00:00Z"
START_S = 1795957200.0  # START in Unix seconds
DEFERRAL = {
    "cluster": "a",
    "start": START,
    "latestStart": "2026-11-29T18:00:00Z",
    "replans": 0,
    "reasons": ["start at 21:00 on a"],
}
DEFERRED = {"phase": "Deferred", "remote": REMOTE, "attempts": 1, "deferral": DEFERRAL}
SUSPENDED = copy(phase="Scheduled", suspended=True)


def deferred_situation(status: dict[str, Any], member: Member, clock_s: float) -> Situation:
    return Situation(status, 1, FailoverPolicy.IF_NOT_STARTED, 300.0, NOW, member, clock_s=clock_s)


def test_the_start_constant_is_the_start_time() -> None:
    assert machine.seconds_of(START) == START_S and machine.rfc3339_of(START_S) == START


def test_a_deferred_plan_is_recorded_first_and_creates_the_job_suspended() -> None:
    step = machine.placed(
        {},
        NOW,
        cluster="a",
        namespace="t",
        name="cg-j",
        placement={"cluster": "a"},
        message="placed on a",
        generation=1,
        deferral=DEFERRAL,
    )
    assert step.conditional and step.patch["phase"] == "Deferred"
    assert step.patch["deferral"] == DEFERRAL
    assert kinds(step) == ["Event:Deferred", "Create"]
    assert step.actions[-1].suspend and step.wake_at == START_S
    deferred = next(c for c in step.patch["conditions"] if c["type"] == "Deferred")
    assert (deferred["status"], deferred["reason"]) == ("True", "Planned")


def test_placing_now_clears_an_old_plan_and_creates_unsuspended() -> None:
    step = machine.placed(
        {"deferral": DEFERRAL},
        NOW,
        cluster="b",
        namespace="t",
        name="cg-j",
        placement={},
        message="m",
        generation=1,
    )
    assert step.patch["phase"] == "Scheduled" and step.patch["deferral"] is None
    assert not step.actions[-1].suspend and step.wake_at is None


def test_a_window_missed_at_placement_says_why_with_a_warning() -> None:
    step = machine.placed(
        {}, NOW, cluster="b", namespace="t", name="cg-j", placement={}, message="m",
        generation=1, late="the deadline can no longer be met",
    )  # fmt: skip
    on_time = next(c for c in step.patch["conditions"] if c["type"] == "OnTime")
    assert (on_time["status"], on_time["reason"]) == ("False", "LateStart")
    assert "Event:LateStart" in kinds(step)


# (status, member, planning clock) → actions, patched phase, wake-up
@pytest.mark.parametrize(
    ("status", "member", "clock", "actions", "phase", "wake"),
    [
        # Recorded, not created yet, before the start: create suspended, look again at start.
        (DEFERRED, Member(Health.READY), START_S - 60, ["Create"], None, START_S),
        # Member not known yet (a restart): wait for its watch, never guess.
        (DEFERRED, Member(Health.UNKNOWN), START_S - 60, [], None, None),
        # Created suspended, not yet recorded as dispatched: recorded, phase stays Deferred.
        (DEFERRED, Member(Health.READY, copy=SUSPENDED), START_S - 60, [], None, START_S),
        # Due: released on the hub (conditionally), then unsuspended.
        (
            DEFERRED,
            Member(Health.READY, copy=SUSPENDED),
            START_S,
            ["Event:Started", "Resume"],
            "Scheduled",
            None,
        ),
        # Due, the Job never got created (member was down): released, created by the next step.
        (DEFERRED, Member(Health.READY), START_S + 5, ["Event:Started"], "Scheduled", None),
        # Released on the hub, the member Job still suspended (crash in between): unsuspend.
        (
            {**RECORDED, "deferral": {**DEFERRAL, "started": START}, "conditions": DISPATCHED},
            Member(Health.READY, copy=SUSPENDED),
            START_S + 5,
            ["Resume"],
            None,
            None,
        ),
        # Due after the latest start (operator down for hours): starts at once, with a Warning.
        (
            DEFERRED,
            Member(Health.READY, copy=SUSPENDED),
            START_S + 6 * 3600,
            ["Event:LateStart", "Event:Started", "Resume"],
            "Scheduled",
            None,
        ),
        # A Deferred job whose recorded member is gone past grace moves, as any other.
        (
            DEFERRED,
            Member(Health.REMOVED),
            START_S - 60,
            ["Event:MemberRemoved", "Place"],
            "Pending",
            None,
        ),
    ],
)
def test_deferred_transitions(
    status: dict[str, Any],
    member: Member,
    clock: float,
    actions: list[str],
    phase: str | None,
    wake: float | None,
) -> None:
    step = machine.step(deferred_situation(status, member, clock))
    assert kinds(step) == actions
    assert step.patch.get("phase") == phase
    assert step.wake_at == wake
    if phase == "Scheduled":
        assert step.conditional and machine.released(step)
        assert step.patch["deferral"]["started"] == machine.rfc3339_of(clock)


def test_a_late_release_carries_the_on_time_condition_false() -> None:
    member = Member(Health.READY, copy=SUSPENDED)
    step = machine.step(deferred_situation(DEFERRED, member, START_S + 6 * 3600))
    on_time = next(c for c in step.patch["conditions"] if c["type"] == "OnTime")
    assert (on_time["status"], on_time["reason"]) == ("False", "LateStart")
    in_time = machine.step(deferred_situation(DEFERRED, member, START_S))
    on_time = next(c for c in in_time.patch["conditions"] if c["type"] == "OnTime")
    assert (on_time["status"], on_time["reason"]) == ("True", "StartedInWindow")


def test_a_joint_move_is_counted_apart_from_the_jobs_own_replans() -> None:
    # A job that used 2 of its own re-plans and was moved once by the joint plan: the joint
    # plan's next move counts in jointMoves only; its own next re-plan in replans only (and
    # keeps the joint count).
    status = {**DEFERRED, "deferral": {**DEFERRAL, "replans": 2, "jointMoves": 1}}
    new = {**DEFERRAL, "start": "2026-11-29T14:00:00Z", "replans": 2}
    joint = machine.replanned(status, NOW, cluster="a", deferral=new, placement={},
                              message="3 Deferred job(s) planned together", joint=True)  # fmt: skip
    assert (joint.patch["deferral"]["replans"], joint.patch["deferral"]["jointMoves"]) == (2, 2)
    assert joint.patch["message"].startswith(
        "moved by the joint plan (2) (3 Deferred job(s) planned together): start "
        "2026-11-29T14:00:00Z on a"
    )
    own = machine.replanned(status, NOW, cluster="a", deferral=new, placement={}, message="x")
    assert (own.patch["deferral"]["replans"], own.patch["deferral"]["jointMoves"]) == (3, 1)
    assert own.patch["message"].startswith("re-planned (3) (x)")
    fresh = machine.replanned(DEFERRED, NOW, cluster="a", deferral=new, placement={}, message="")
    assert "jointMoves" not in fresh.patch["deferral"]  # absent until the joint plan moves it


def test_a_created_suspended_job_is_not_mirrored_as_scheduled_before_its_start() -> None:
    status = {**DEFERRED, "conditions": [{"type": "Dispatched", "status": "True"}]}
    step = machine.step(deferred_situation(status, Member(Health.READY, copy=SUSPENDED), 0.0))
    assert (step.patch, step.actions, step.wake_at) == ({}, (), START_S)


@pytest.mark.parametrize(
    ("cluster", "actions", "moved"),
    [("a", ["Event:Replanned"], False), ("b", ["Event:Replanned", "Create"], True)],
)
def test_a_replan_is_recorded_counted_and_moves_the_suspended_copy(
    cluster: str, actions: list[str], moved: bool
) -> None:
    new = {**DEFERRAL, "cluster": cluster, "start": "2026-11-29T14:00:00Z"}
    step = machine.replanned(DEFERRED, NOW, cluster=cluster, deferral=new, placement={}, message="")
    assert step.conditional and kinds(step) == actions
    assert step.patch["deferral"]["replans"] == 1
    assert step.patch["deferral"]["start"] == "2026-11-29T14:00:00Z"
    assert step.wake_at == START_S + 3600
    if moved:
        assert step.patch["remote"] == {**REMOTE, "cluster": "b", "attempt": 2}
        assert step.patch["staleCopies"] == [REMOTE]  # the old copy is fenced (deleted)
        assert step.actions[-1].suspend
    else:
        assert "remote" not in step.patch and "staleCopies" not in step.patch


# -- Deferred at its start: a fresh fit check, never released blindly (issue 9) -------------

NO_ROOM = Room(False, "a has room for 0 of its 1 pod(s) now")
LATEST_S = START_S + 5 * 3600  # DEFERRAL's latestStart, 18:00
USED_UP = {**DEFERRED, "deferral": {**DEFERRAL, "replans": 3}}


def due_situation(
    status: dict[str, Any], member: Member, clock_s: float, room: Room, max_replans: int = 3
) -> Situation:
    return Situation(
        status, 1, FailoverPolicy.IF_NOT_STARTED, 300.0, NOW, member,
        clock_s=clock_s, room=room, max_replans=max_replans,
    )  # fmt: skip


READY_SUSPENDED = Member(Health.READY, copy=SUSPENDED)
DOWN = Member(Health.UNREACHABLE, down_for=5.0)  # inside the 300 s grace period


# (status, member, clock, room, --max-replans) → actions, the Deferred condition's reason
@pytest.mark.parametrize(
    ("status", "member", "clock", "room", "limit", "actions", "reason"),
    [
        # Room on a Ready member: released as planned.
        (DEFERRED, READY_SUSPENDED, START_S, Room(), 3, ["Event:Started", "Resume"], "Started"),
        # No room at the start, re-plans left: held, a Warning saying why, a new plan asked.
        (DEFERRED, READY_SUSPENDED, START_S, NO_ROOM, 3, ["Event:NoRoomAtStart", "Replan"],
         "NoRoomAtStart"),
        # Late and no room: still not released blindly.
        (DEFERRED, READY_SUSPENDED, START_S + 6 * 3600, NO_ROOM, 3,
         ["Event:NoRoomAtStart", "Replan"], "NoRoomAtStart"),
        # Re-plans used up: waits for room on its member, says so, asks for nothing.
        (USED_UP, READY_SUSPENDED, START_S, NO_ROOM, 3, ["Event:WaitingForRoom"],
         "WaitingForRoom"),
        (DEFERRED, READY_SUSPENDED, START_S, NO_ROOM, 0, ["Event:WaitingForRoom"],
         "WaitingForRoom"),
        # ... until its latest start (18:00): a minute before it still waits; from then on it
        # can wait no longer and asks for a plan anywhere with room now.
        (USED_UP, READY_SUSPENDED, LATEST_S - 60, NO_ROOM, 3, ["Event:WaitingForRoom"],
         "WaitingForRoom"),
        (USED_UP, READY_SUSPENDED, LATEST_S, NO_ROOM, 3,
         ["Event:NoRoomAtLatestStart", "Replan"], "NoRoomAtLatestStart"),
        (USED_UP, READY_SUSPENDED, LATEST_S + 3600, NO_ROOM, 3,
         ["Event:NoRoomAtLatestStart", "Replan"], "NoRoomAtLatestStart"),
        # Its member unreachable at the start (inside grace): re-planned now, not after grace.
        (DEFERRED, DOWN, START_S, Room(False, "a is not Ready (ProbeFailed)"), 3,
         ["Event:NoRoomAtStart", "Replan"], "NoRoomAtStart"),
        # ... with no re-plans left: waits out the grace period as any job (then failover).
        (USED_UP, DOWN, START_S, Room(False, "a is not Ready"), 3, [], None),
        # Unreachable before the start: nothing here (the placer's promise check re-plans).
        (DEFERRED, DOWN, START_S - 60, Room(), 3, [], None),
        # Not due: the room is not asked for, the job is created suspended as planned.
        (DEFERRED, Member(Health.READY), START_S - 60, NO_ROOM, 3, ["Create"], None),
        # Member unknown (a restart, a resumed standby): never guess.
        (DEFERRED, UNKNOWN, START_S, NO_ROOM, 3, [], None),
    ],
)  # fmt: skip
def test_a_due_deferred_job_is_released_only_where_it_fits(
    status: dict[str, Any],
    member: Member,
    clock: float,
    room: Room,
    limit: int,
    actions: list[str],
    reason: str | None,
) -> None:
    step = machine.step(due_situation(status, member, clock, room, limit))
    assert kinds(step) == actions
    deferred = next(
        (c for c in step.patch.get("conditions") or [] if c["type"] == "Deferred"), None
    )
    assert (deferred or {}).get("reason") == reason
    assert machine.released(step) == (reason == "Started")
    if reason in ("NoRoomAtStart", "WaitingForRoom", "NoRoomAtLatestStart"):
        assert step.conditional and "phase" not in step.patch and "deferral" not in step.patch
        assert room.why in step.patch["message"] and step.wake_at == START_S  # kept due
        assert deferred is not None and deferred["status"] == "True"
        # Waiting, it is also looked at when its latest start comes (a quiet fleet brings no
        # other look); asking for a plan, it needs no such look.
        assert step.recheck_at == (LATEST_S if reason == "WaitingForRoom" else None)


def test_a_held_job_writes_its_reason_once_and_keeps_asking_for_a_plan() -> None:
    first = machine.step(due_situation(DEFERRED, READY_SUSPENDED, START_S, NO_ROOM))
    again = machine.step(
        due_situation({**DEFERRED, **first.patch}, READY_SUSPENDED, START_S + 30, NO_ROOM)
    )
    assert (again.patch, kinds(again)) == ({}, ["Replan"])
    assert "re-plan 1 of at most 3" in first.patch["message"]
    waiting = machine.step(due_situation(USED_UP, READY_SUSPENDED, START_S, NO_ROOM))
    quiet = machine.step(
        due_situation({**USED_UP, **waiting.patch}, READY_SUSPENDED, START_S + 30, NO_ROOM)
    )
    assert (quiet.patch, quiet.actions, quiet.recheck_at) == ({}, (), LATEST_S)
    released = machine.step(
        due_situation({**USED_UP, **waiting.patch}, READY_SUSPENDED, START_S + 60, Room())
    )
    assert machine.released(released)  # room came back: released on its planned member
    assert (
        "waiting for room there until its latest start 2026-11-29T18:00:00Z"
        in (waiting.patch["message"])
    )
    late = machine.step(
        due_situation({**USED_UP, **waiting.patch}, READY_SUSPENDED, LATEST_S, NO_ROOM)
    )
    assert kinds(late) == ["Event:NoRoomAtLatestStart", "Replan"]  # said once, then asks
    assert "its latest start 2026-11-29T18:00:00Z has come" in late.patch["message"]
    still = machine.step(
        due_situation({**USED_UP, **late.patch}, READY_SUSPENDED, LATEST_S + 30, NO_ROOM)
    )
    assert (still.patch, kinds(still)) == ({}, ["Replan"])


def test_a_replan_says_what_prompted_it() -> None:
    new = {**DEFERRAL, "cluster": "b"}
    step = machine.replanned(
        DEFERRED, NOW, cluster="b", deferral=new, placement={}, message="a left the fleet"
    )
    assert step.patch["message"].startswith("re-planned (1) (a left the fleet): start")
