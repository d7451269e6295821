"""The hub writer's Event deduplication (no hub: ``event`` only queues, the senders post)."""

from __future__ import annotations

from computegrid.fleet import HubWriter
from computegrid.fleet.hubwrites import JobRef

A = JobRef("team", "a", "uid-a")
B = JobRef("team", "b", "uid-b")


def queued(writer: HubWriter) -> list[tuple[str, str, str]]:
    out = []
    while not writer.events.empty():
        job, _, reason, message = writer.events.get_nowait()
        out.append((job.uid, reason, message))
    return out


def test_an_event_is_posted_once_per_job_reason_and_message() -> None:
    writer = HubWriter(None)  # type: ignore[arg-type]  # nothing is written here
    writer.event(A, "Normal", "Scheduled", "placed on x")
    writer.event(A, "Normal", "Scheduled", "placed on x")  # the same again: not posted
    writer.event(B, "Normal", "Scheduled", "placed on x")  # another job: posted
    writer.event(A, "Warning", "Unschedulable", "no room")  # another reason: posted
    writer.event(A, "Normal", "Scheduled", "placed on y")  # a new message: posted
    writer.event(A, "Normal", "Scheduled", "placed on x")  # changed back: posted again
    assert queued(writer) == [
        ("uid-a", "Scheduled", "placed on x"),
        ("uid-b", "Scheduled", "placed on x"),
        ("uid-a", "Unschedulable", "no room"),
        ("uid-a", "Scheduled", "placed on y"),
        ("uid-a", "Scheduled", "placed on x"),
    ]


def test_a_forgotten_job_posts_again_and_leaves_the_others_alone() -> None:
    writer = HubWriter(None)  # type: ignore[arg-type]
    writer.event(A, "Normal", "Scheduled", "placed on x")
    writer.event(B, "Normal", "Scheduled", "placed on x")
    queued(writer)
    writer.forget("uid-a")
    assert set(writer.posted) == {"uid-b"}
    writer.event(A, "Normal", "Scheduled", "placed on x")
    writer.event(B, "Normal", "Scheduled", "placed on x")
    assert queued(writer) == [("uid-a", "Scheduled", "placed on x")]


def test_a_full_backlog_drops_and_counts_instead_of_growing() -> None:
    writer = HubWriter(None, event_backlog=2)  # type: ignore[arg-type]
    dropped = []
    writer.on_drop = lambda: dropped.append(1)
    for i in range(4):
        writer.event(A, "Normal", f"Reason{i}", "m")
    assert len(queued(writer)) == 2 and len(dropped) == 2
