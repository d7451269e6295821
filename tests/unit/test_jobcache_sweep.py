"""handlers.jobcache.vanished: which cached jobs a full list of the hub shows as deleted."""

from __future__ import annotations

from computegrid.handlers.jobcache import Entry, vanished


def entry(uid: str, created: float) -> Entry:
    job = Entry(uid, "team-a", f"job-{uid}")
    job.created = created
    return job


def test_a_job_missing_from_the_list_is_gone_unless_it_is_too_new_for_the_list() -> None:
    cached = {
        "kept": entry("kept", 1_000.0),
        "deleted": entry("deleted", 1_000.0),
        "brand-new": entry("brand-new", 1_950.0),  # created 50 s before the list began
        "unknown-age": entry("unknown-age", 0.0),  # no creationTimestamp seen yet
    }
    assert vanished(cached, {"kept"}, listed_at=2_000.0, settle=60.0) == ["deleted"]


def test_nothing_vanishes_when_the_list_has_everything() -> None:
    cached = {u: entry(u, 10.0) for u in ("a", "b")}
    assert vanished(cached, {"a", "b", "c"}, listed_at=1_000.0) == []
