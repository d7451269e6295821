"""A ComputeJob's life on the fleet: mirrored phases, deletion, capacity, spec edits."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from operator_fixtures import Hub, OperatorProcess, computejob, jobs_with_uid, wait_for

pytest_plugins = ["operator_fixtures"]
ONLY_TIANFU = {"computegrid.io/max-latency-ms": "3"}  # Chengdu → tianfu 2 ms, chongqing 4 ms


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def test_mirrors_running_then_succeeded(
    operator: OperatorProcess, hub_api: Any, namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("render", origin="chengdu", run_seconds=6, parallelism=2))
    running = hub.wait_phase("render", "Running")
    assert running["active"] >= 1 and running["startTime"]
    done = hub.wait_phase("render", "Succeeded")
    assert done["succeeded"] == 2 and done["completionTime"]
    completed = conditions(done)["Completed"]
    assert completed["status"] == "True" and completed["reason"] == "Succeeded"
    # One Normal Event over a successful life (where and why it was placed); the success is
    # the phase and Completed=True, not another hub write.
    wait_for(lambda: "Scheduled" in {e.reason for e in hub.events("render")}, "Scheduled Event")
    assert [e.reason for e in hub.events("render") if e.type == "Normal"] == ["Scheduled"]


def test_mirrors_failed(operator: OperatorProcess, hub_api: Any, namespace: str) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("broken", origin="chengdu", run_seconds=1, fail=True))
    failed = hub.wait_phase("broken", "Failed")
    assert failed["failed"] >= 1
    completed = conditions(failed)["Completed"]
    assert completed["status"] == "False" and completed["reason"] == "Failed"
    warned = wait_for(
        lambda: [e for e in hub.events("broken") if e.reason == "Failed"], "a Failed Event"
    )
    assert warned[0].type == "Warning" and warned[0].message == failed["message"]


def test_delete_removes_the_remote_job(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    uid = hub.create(computejob("long", origin="chengdu", run_seconds=600))["metadata"]["uid"]
    status = hub.wait_phase("long", "Running")
    member = member_apis[status["remote"]["cluster"]]
    assert len(jobs_with_uid(member, uid)) == 1
    hub.delete("long")
    wait_for(lambda: hub.gone("long"), "the ComputeJob gone (finalizer released)")
    wait_for(lambda: jobs_with_uid(member, uid) == [], "the member Job deleted")


def test_pending_until_capacity_frees(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    big = {"origin": "chengdu", "cpu": "40", "run_seconds": 600}
    hub.create(computejob("first", **big, extra_annotations=ONLY_TIANFU))  # type: ignore[arg-type]
    assert hub.wait_phase("first", "Running")["remote"]["cluster"] == "chengdu-chongqing-tianfu"
    hub.create(computejob("second", **big, extra_annotations=ONLY_TIANFU))  # type: ignore[arg-type]
    pending = hub.wait_phase("second", "Pending")
    scheduled = conditions(pending)["Scheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"
    assert "chengdu-chongqing-tianfu:" in scheduled["message"]  # the per-cluster diagnosis
    assert "gansu-qingyang:" in scheduled["message"]
    hub.delete("first")
    placed = hub.wait_phase("second", "Scheduled", "Running", timeout=120)
    assert placed["placement"]["cluster"] == "chengdu-chongqing-tianfu"
    assert conditions(placed)["Scheduled"]["status"] == "True"


def test_short_jobs_queued_for_room_run_one_after_another(
    operator: OperatorProcess, hub_api: Any, namespace: str
) -> None:
    """Room for one at a time: each 1 s job's pods may come and go between two probes, so no
    probe ever shows the room taken or given back. The room held for a job must come back
    when it is seen finished (or its reservation expires), and the queued jobs look again:
    141 of 800 such jobs once waited for ever on a full bed."""
    hub = Hub(hub_api, namespace)
    short = {"origin": "chengdu", "cpu": "40", "run_seconds": 1}
    names = [f"short-{i}" for i in range(6)]
    for name in names:
        hub.create(computejob(name, **short, extra_annotations=ONLY_TIANFU))  # type: ignore[arg-type]
    # All within 100 s, less than one 120 s reservation backstop: each job's room comes back
    # when it is seen finished, not when its reservation expires.
    wait_for(
        lambda: all(hub.status(name).get("phase") == "Succeeded" for name in names),
        "six short jobs Succeeded one after another",
        100,
    )
    for name in names:
        assert hub.status(name)["placement"]["cluster"] == "chengdu-chongqing-tianfu"


def test_spec_change_after_dispatch_is_refused(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    uid = hub.create(computejob("fixed", origin="chengdu", run_seconds=600))["metadata"]["uid"]
    status = hub.wait_phase("fixed", "Running")
    member = member_apis[status["remote"]["cluster"]]
    job_uid = jobs_with_uid(member, uid)[0].metadata.uid
    client.CustomObjectsApi(hub_api).patch_namespaced_custom_object(
        "computegrid.io",
        "v1alpha1",
        namespace,
        "computejobs",
        "fixed",
        {"spec": {"parallelism": 3}},
    )
    refused = wait_for(
        lambda: conditions(hub.status("fixed")).get("SpecApplied"), "SpecApplied condition"
    )
    assert refused["status"] == "False" and "parallelism" in refused["message"]
    wait_for(
        lambda: "SpecChangeRejected" in {e.reason for e in hub.events("fixed")},
        "SpecChangeRejected Event",
    )
    jobs = jobs_with_uid(member, uid)
    assert [j.metadata.uid for j in jobs] == [job_uid]  # no silent re-create
    assert jobs[0].spec.parallelism == 1
