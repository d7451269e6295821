"""Faults between the operator and a member, through a fault proxy of the test's own.

- Ambiguous create: the member stores the Job and the answer never arrives (the proxy forwards
  the create, then drops the connection), and variants: 429 and 500 answers, watches cut
  mid-stream, a 30 s stall. The operator must never make a second Job: it retries on the same
  member under the same deterministic name and adopts its own Job on 409.
- Partition: the operator cut off from a healthy member for longer than the grace period,
  under each ``spec.failover`` policy. What moved, what ran twice, what was suspended and
  deleted when the member came back.

Both run a dedicated operator whose view of chengdu-chongqing-tianfu goes through the proxy
(its kubeconfig Secret on the hub is rewritten before the operator starts, and put back
after). CI size: 20 jobs per fault; ``COMPUTEGRID_SUITES=full``: 100. Summaries in
out/suites/ambiguous-create.json and out/suites/partition.json.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_fixtures import (
    GRACE_S,
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    jobs_with_uid,
    no_operator,
    ready_members,
    suite_size,
    wait_for,
    write_summary,
)
from tests.tools.faultproxy import FaultProxy, restore_member_route, route_member_through

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]
TIANFU = "chengdu-chongqing-tianfu"
ONLY_TIANFU = {"computegrid.io/max-latency-ms": "3"}  # Chengdu → tianfu 2 ms, chongqing 4 ms
CREATE = r"/apis/batch/v1/namespaces/[^/]+/jobs$"


@pytest.fixture
def proxied(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_clusters: list[str],
    tmp_path: Path,
) -> Iterator[tuple[FaultProxy, OperatorProcess]]:
    """A fresh operator that reaches tianfu through a fault proxy (the session's is paused)."""
    with (
        no_operator(hub_api, member_clusters),
        FaultProxy.from_kubeconfig(fleet.member(TIANFU).kubeconfig) as proxy,
    ):
        route_member_through(proxy, hub_api, fleet, TIANFU)
        mine = OperatorProcess(fleet.hub.kubeconfig, tmp_path / "faults.log")
        try:
            mine.start()
            wait_for(
                lambda: mine.log_path.exists() and "following member" in mine.log_path.read_text(),
                "the operator following its members",
                120,
            )
            wait_for(lambda: set(member_clusters) <= ready_members(hub_api), "members Ready", 120)
            yield proxy, mine
        finally:
            mine.stop()
            print(f"operator log: {mine.log_path}")
            restore_member_route(hub_api, fleet, TIANFU)


def pinned(name: str, **kw: Any) -> dict[str, Any]:
    return computejob(name, origin="chengdu", sensitivity="high", cpu="100m",
                      extra_annotations=ONLY_TIANFU, **kw)  # fmt: skip


def test_an_ambiguous_create_never_makes_a_second_job(
    proxied: tuple[FaultProxy, OperatorProcess],
    hub_api: Any,
    member_apis: dict[str, Any],
    namespace: str,
) -> None:
    proxy, _ = proxied
    per_fault = suite_size(20, 100)
    hub = Hub(hub_api, namespace)
    faults = {
        "drop-response": lambda: proxy.drop_response("POST", CREATE, count=per_fault),
        "429": lambda: proxy.status(429, "POST", CREATE, count=per_fault),
        "500": lambda: proxy.status(500, "POST", CREATE, count=per_fault),
        "watch-reset": lambda: None,  # cut below, while the jobs are created
        "stall-30s": lambda: proxy.stall("POST", CREATE, count=2),
    }
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    with CreationLog(member_apis, namespace) as log:
        for fault, arm in faults.items():
            arm()
            names = [f"{fault}-{i:03d}" for i in range(per_fault)]
            for name in names:
                hub.create(pinned(name, run_seconds=1))
            if fault == "watch-reset":
                for _ in range(3):
                    time.sleep(1.0)
                    proxy.reset_watches()
            wait_for(
                lambda n=names: all(
                    (j.get("status") or {}).get("phase") == "Succeeded"
                    for j in hub_jobs(hub_api, namespace)
                    if j["metadata"]["name"] in n
                ),
                f"{fault}: all Succeeded",
                300,
            )
            proxy.clear()
            results[fault] = {"jobs": per_fault}
        duplicates = log.duplicates()
        created = dict(log.created)
    summary = {
        "per_fault": results,
        "member_jobs_created": sum(len(w) for w in created.values()),
        "computejobs": len(hub_jobs(hub_api, namespace)),
        "duplicates": len(duplicates),
        "proxy": proxy.summary(),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_summary("ambiguous-create", summary)
    assert not duplicates, duplicates
    assert summary["member_jobs_created"] == summary["computejobs"]
    assert summary["proxy"]["faults"], "no fault was injected"


def test_a_partition_moves_only_what_the_failover_policy_allows(
    proxied: tuple[FaultProxy, OperatorProcess],
    hub_api: Any,
    member_apis: dict[str, Any],
    namespace: str,
) -> None:
    proxy, _ = proxied
    hub = Hub(hub_api, namespace)
    cases = {
        "never": computejob("never", origin="shanghai", sensitivity="low", run_seconds=40,
                            failover="Never"),
        "if-not-started": computejob("if-not-started", origin="shanghai", sensitivity="low",
                                     run_seconds=40),
        "always": computejob("always", origin="shanghai", sensitivity="low", run_seconds=40,
                             failover="Always"),
        # Its pods can never be scheduled (no node has the label): it never starts.
        "never-started": computejob("never-started", origin="shanghai", sensitivity="low",
                                    run_seconds=40),
    }  # fmt: skip
    cases["never-started"]["spec"]["template"]["spec"]["nodeSelector"] = {"cg-test/none": "x"}
    for body in cases.values():
        hub.create(body)
    for name in cases:
        want = ("Scheduled",) if name == "never-started" else ("Running",)
        status = hub.wait_phase(name, *want)
        assert status["remote"]["cluster"] == TIANFU, f"{name} must start on tianfu"
    uids = {name: hub.get(name)["metadata"]["uid"] for name in cases}
    ran_before_cut = {name: bool(hub.status(name).get("startTime")) for name in cases}
    with CreationLog(member_apis, namespace) as log:
        existing = {uid: set(where) for uid, where in log.created.items()}  # before the cut
        proxy.partition(True)
        cut = time.monotonic()
        wait_for(
            lambda: all(
                (hub.status(n).get("reschedules") or 0) == 1 and hub.status(n).get("remote")
                for n in ("always", "never-started")
            ),
            "the movable jobs moved",
            120,
        )
        time.sleep(GRACE_S)  # the others had their chance to move too
        stayed = {n: hub.status(n)["remote"]["cluster"] for n in ("never", "if-not-started")}
        partitioned_for = time.monotonic() - cut
        proxy.partition(False)
        returned = time.monotonic()

        def old_copies_gone() -> bool:
            return all(not jobs_with_uid(member_apis[TIANFU], uids[n])
                       for n in ("always", "never-started"))  # fmt: skip

        wait_for(old_copies_gone, "the moved jobs' old copies suspended and deleted", 120)
        fenced_in = time.monotonic() - returned
        for name in ("never", "if-not-started"):
            hub.wait_phase(name, "Succeeded", timeout=180)
        hub.wait_phase("always", "Succeeded", timeout=180)
        created = {
            n: sorted(m for m, _ in log.created.get(uids[n], set()) - existing.get(uids[n], set()))
            for n in cases
        }
    # Ran twice: its pods had run on tianfu before the cut, and a new copy was made elsewhere
    # (the old one kept running on the healthy member until it was suspended on return).
    ran_twice = {n: ran_before_cut[n] and bool(created[n]) for n in cases}
    summary = {
        "partitioned_s": round(partitioned_for, 1),
        "grace_s": GRACE_S,
        "stayed_on_tianfu": stayed,
        "new_copies_during_cut": created,
        "moved": {n: bool(created[n]) for n in cases},
        "ran_twice": ran_twice,
        "old_copies_deleted_s_after_return": round(fenced_in, 1),
        "final": {n: hub.status(n).get("phase") for n in cases},
        "proxy": proxy.summary(),
    }
    write_summary("partition", summary)
    assert stayed == {"never": TIANFU, "if-not-started": TIANFU}
    assert not created["never"] and not created["if-not-started"]  # never run twice
    assert created["always"] and created["never-started"]  # moved to another member
    assert ran_twice == {"never": False, "if-not-started": False, "always": True,
                         "never-started": False}  # fmt: skip
    assert TIANFU not in created["always"] + created["never-started"]
