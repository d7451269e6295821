"""The operator's compact cache of hub ComputeJobs (handlers/jobcache.py)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from computegrid.api import FailoverPolicy
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import InvalidJob
from computegrid.scheduling.run_profile import FinishedRun, shape_of

ENDED = datetime(2026, 11, 29, 7, 0, 3, tzinfo=UTC).timestamp()  # finished_status's end


def body(generation: int = 1, version: str = "10", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-a",
            "name": "train",
            "uid": "u1",
            "generation": generation,
            "resourceVersion": version,
            "creationTimestamp": "2026-11-29T07:00:00Z",
            "annotations": {
                "computegrid.io/latency-sensitivity": "low",
                "computegrid.io/origin": "shanghai",
                "other": "x",
            },
        },
        "spec": {
            "computeType": "general",
            "resources": {"cpu": "1", "memory": "1Gi"},
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                }
            },
            **spec,
        },
        "status": {},
    }


def test_the_spec_is_kept_compact_and_read_back_whole() -> None:
    entry = Entry("u1", "team-a", "train")
    raw = body(failover={"policy": "Never", "gracePeriodSeconds": 600})
    assert entry.update(raw)
    assert entry.spec == raw["spec"]
    assert entry.spec_text is not None and len(entry.spec_text) < len(json.dumps(raw["spec"]))
    assert entry.failover(300.0) == (FailoverPolicy.NEVER, 600.0)
    assert entry.job().metadata.name == "train"
    assert "other" not in entry.meta["annotations"]


def test_a_new_generation_replaces_the_spec_and_what_was_parsed_from_it() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.update(body())
    first = entry.request()
    assert entry.failover(300.0) == (FailoverPolicy.IF_NOT_STARTED, 300.0)
    entry.update(body(generation=2, version="12", failover={"policy": "Always"}))
    assert entry.failover(300.0) == (FailoverPolicy.ALWAYS, 300.0)
    assert entry.request() is not first
    assert not entry.update(body(generation=1, version="11"))  # older news is ignored
    assert entry.failover(300.0)[0] == FailoverPolicy.ALWAYS


def test_dropping_the_parsed_job_keeps_the_request_and_can_parse_it_again() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.update(body())
    parsed, request = entry.job(), entry.request()
    entry.drop_parsed()
    assert entry.request() is request  # reservations still read it
    again = entry.job()
    assert again is not parsed and again == parsed


def test_a_finished_job_keeps_no_spec() -> None:
    entry = Entry("u1", "team-a", "train")
    finished = copy.deepcopy(body(version="20"))
    finished["status"] = {"phase": "Succeeded", "placement": {"cluster": "c", "reasons": ["r"]}}
    entry.update(finished)
    assert entry.spec is None and entry.spec_text is None and entry.meta == {}
    assert entry.status["placement"] == {"cluster": "c"}
    with pytest.raises(InvalidJob, match="finished"):
        entry.job()


def finished_status(i: int) -> dict[str, Any]:
    """A finished job's status as the hub returns it (the shape mirror.py writes)."""
    return {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "attempts": 1,
        "active": 0,
        "succeeded": 1,
        "failed": 0,
        "message": "1 pods succeeded",
        "remote": {"cluster": f"m{i % 3}", "namespace": "team-a", "name": f"train-{i:05d}"},
        "startTime": "2026-11-29T07:00:01Z",
        "completionTime": "2026-11-29T07:00:03Z",
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "reason": kind,
                "message": f"{kind} on m{i % 3}",
                "lastTransitionTime": "2026-11-29T07:00:02Z",
            }
            for kind in ("Scheduled", "Dispatched", "Completed", "SpecApplied")
        ],
    }


def test_a_finished_status_is_kept_as_text_and_read_back_whole() -> None:
    entry = Entry("u1", "team-a", "train")
    running = copy.deepcopy(body())
    running["status"] = {"phase": "Running", "remote": {"cluster": "m1"}}
    entry.update(running)
    assert entry.status is entry.status  # a live job's status is the dict itself
    assert (entry.phase, entry.cluster, entry.finished) == ("Running", "m1", False)
    done = copy.deepcopy(body(version="30"))
    done["status"] = finished_status(1) | {"staleCopies": [{"cluster": "m2", "name": "x"}]}
    entry.update(done)
    assert entry.finished and entry.cluster == "m1" and entry.stale == ("m2",)
    assert entry.status == done["status"]
    entry.status["phase"] = "Running"  # a copy: not kept
    assert entry.status["phase"] == "Succeeded"
    entry.status = {**entry.status, "staleCopies": []}  # assigned whole: kept
    assert entry.stale == () and not entry.mentions("m2") and not entry.mentions("m1")


def test_a_job_mentions_the_members_it_may_still_have_a_copy_on() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.status = {"phase": "Running", "remote": {"cluster": "m1"}}
    assert entry.mentions("m1") and not entry.mentions("m2")
    entry.status = {
        "phase": "Failed",
        "remote": {"cluster": "m1"},
        "staleCopies": [{"cluster": "m2"}],
    }
    assert entry.mentions("m1") and entry.mentions("m2")  # a stale copy still to remove


def test_finished_statuses_cost_under_half_of_their_parsed_form() -> None:
    """What 10,000 finished jobs hold: measured, not estimated (tracemalloc)."""
    import tracemalloc

    def held(build: Any) -> int:
        tracemalloc.start()
        try:
            kept = [build(i) for i in range(2000)]
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert len(kept) == 2000
        return size

    def entry(i: int) -> Entry:
        one = Entry(f"u{i}", "team-a", f"train-{i}")
        one.status = json.loads(json.dumps(finished_status(i)))
        return one

    parsed = held(lambda i: json.loads(json.dumps(finished_status(i))))
    compact = held(entry)  # the whole entry, against the parsed status alone
    assert compact < parsed / 2, (compact, parsed)


def test_a_decided_job_waiting_for_its_next_step_holds_no_parsed_job() -> None:
    """Under a burst thousands of decided jobs wait in the work queue: without the parsed
    job an entry holds under half of what it held with it (tracemalloc)."""
    import tracemalloc

    def held(drop: bool) -> int:
        entries = []
        for i in range(500):  # parsed bodies made first: only the entries are measured
            entries.append(Entry(f"u{i}", "team-a", f"train-{i}"))
            entries[-1].update(copy.deepcopy(body()))
        tracemalloc.start()
        try:
            for one in entries:
                one.request()
                if drop:
                    one.drop_parsed()
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    kept, dropped = held(False), held(True)
    assert dropped < kept / 2, (dropped, kept)


def succeeded(version: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    done = copy.deepcopy(body(version=version))
    done["status"] = status if status is not None else finished_status(0)
    return done


def test_a_job_that_succeeded_reports_its_run_once() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.update(body())
    request = entry.request()  # placed by this process: its request was read
    assert entry.run_once() is None  # still running
    entry.update(succeeded("20"))  # the spec is dropped, the run is not lost
    assert entry.spec is None
    assert entry.run_once() == FinishedRun(shape_of(request), 2.0, ENDED)  # 07:00:01 → 07:00:03
    assert entry.run_once() is None
    entry.update(succeeded("21"))
    assert entry.run_once() is None  # a later event of the same job counts nothing twice


def test_a_job_first_seen_succeeded_reports_its_run_once_without_a_parse() -> None:
    # Finished before the operator started: the start's list holds it already Succeeded.
    done = succeeded("20")
    done["spec"]["resources"]["nvidia.com/gpu"] = "2"
    done["spec"]["computeType"] = "intelligent"
    entry = Entry("u1", "team-a", "train")
    entry.update(done)
    assert entry.spec is None and entry.meta == {} and entry._job is None
    assert entry._request is None  # no parse: the shape is read from three fields
    assert entry.run_once() == FinishedRun(("intelligent", "low", 2.0), 2.0, ENDED)
    assert entry.run_once() is None
    entry.update(succeeded("21"))  # a relist: the same job counts nothing twice
    assert entry.run_once() is None


def test_a_job_that_succeeded_unread_while_followed_reports_its_shape() -> None:
    # Running when the operator started (followed, never placed: its request never read),
    # it succeeds: from the hub's body, or from our own write of its status.
    from_body = Entry("u1", "team-a", "train")
    from_body.update(body())
    from_body.update(succeeded("20"))
    written = Entry("u2", "team-a", "train")
    written.update(body())
    written.status = finished_status(0)
    expected = FinishedRun(("general", "low", 0.0), 2.0, ENDED)
    assert from_body.run_once() == written.run_once() == expected


@pytest.mark.parametrize(
    "garble",
    [
        lambda b: b.pop("spec"),
        lambda b: b["spec"].update(computeType="quantum"),
        lambda b: b["spec"].update(resources={"nvidia.com/gpu": "many"}),
        lambda b: b["metadata"]["annotations"].update(
            {"computegrid.io/latency-sensitivity": "urgent"}
        ),
        lambda b: b["status"].pop("startTime"),
        lambda b: b["status"].update(completionTime="yesterday"),
        lambda b: b["status"].update(completionTime=17),
        lambda b: b["status"].update(completionTime=b["status"]["startTime"]),
    ],
)
def test_a_job_first_seen_succeeded_with_a_field_garbled_reports_nothing(garble: Any) -> None:
    intact, entry = Entry("u0", "team-a", "train"), Entry("u1", "team-a", "train")
    intact.update(succeeded("20"))
    assert intact.run_once() is not None  # the same body, whole, reports its run
    done = succeeded("20")
    garble(done)
    entry.update(done)  # no crash
    assert entry.run_once() is None
    assert entry.run_once() is None


def test_a_run_is_not_reported_for_jobs_that_failed_or_without_times() -> None:
    seen_failed = Entry("u0", "team-a", "train")
    seen_failed.update(succeeded("20", {**finished_status(0), "phase": "Failed"}))
    assert seen_failed.run_once() is None and seen_failed._finished_run is None
    failed = Entry("u2", "team-a", "train")
    failed.update(body())
    failed.request()
    failed.update(succeeded("20", {**finished_status(0), "phase": "Failed"}))
    assert failed.run_once() is None and failed._finished_run is None  # holds nothing
    no_times = Entry("u3", "team-a", "train")
    no_times.update(body())
    no_times.request()
    no_times.update(succeeded("20", {"phase": "Succeeded", "startTime": "garbled"}))
    assert no_times.run_once() is None
