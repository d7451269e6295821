"""A ComputeJob deleted while the operator cannot see the hub: its member Job must still go.

When the hub comes back, Kopf either resumes the ComputeJob watch from its resourceVersion
(the DELETED event arrives) or, after giving up resuming, lists afresh, and a list reports no
deletions: then only the periodic metadata sweep (``--hub-sweep-interval``) finds the job
gone. Which of the two happens depends on timing (both were seen); the test holds the
partition until Kopf has given up resuming, so the second can happen, and asserts the
outcome either way: the member Job is deleted. The sweep's own logic is unit-tested
(``tests/unit/test_jobcache_sweep.py``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from operator_fixtures import (
    Hub,
    OperatorProcess,
    computejob,
    jobs_with_uid,
    no_operator,
    wait_for,
)
from tests.tools.faultproxy import FaultProxy

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]


def given_up(log: Path) -> str:
    """The operator's log lines where Kopf's last attempt at a request failed."""
    return "\n".join(line for line in log.read_text().splitlines() if "attempt #9/9" in line)


def test_a_job_deleted_while_the_hub_was_unreachable_loses_its_member_job(
    operator: OperatorProcess,
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    hub = Hub(hub_api, namespace)
    with (
        no_operator(hub_api, member_clusters),
        FaultProxy.from_kubeconfig(fleet.hub.kubeconfig) as proxy,
    ):
        config = proxy.write_kubeconfig(tmp_path / "hub-through-proxy.yaml")
        cut = OperatorProcess(
            str(config), tmp_path / "cut-off.log", extra=["--hub-sweep-interval", "3"]
        )
        cut.start()
        try:
            uid = hub.create(computejob("long", origin="chengdu", run_seconds=900))["metadata"][
                "uid"
            ]
            status = hub.wait_phase("long", "Running")
            member = member_apis[status["remote"]["cluster"]]
            assert len(jobs_with_uid(member, uid)) == 1
            proxy.partition(True)  # the operator loses the hub (its watches are cut)
            time.sleep(1.0)  # the cut has reached the operator's side
            hub.delete("long")
            wait_for(lambda: hub.gone("long"), "the ComputeJob gone from the hub")
            # Kopf resumes a watch from its resourceVersion (the DELETED event would then
            # arrive) for 9 attempts; after that it starts over with a list, which is
            # what happens when the outage outlasts its retries or the history (410).
            wait_for(
                lambda: "computejobs?watch=true" in given_up(cut.log_path),
                "Kopf giving up resuming the ComputeJob watch",
                240,
            )
            proxy.partition(False)  # back: the watch lists afresh, and sees no deletion
            wait_for(
                lambda: jobs_with_uid(member, uid) == [],
                "the member Job of the deleted ComputeJob removed",
                90,
            )
            swept = "deleted while unwatched" in cut.log_path.read_text()
            print(f"removed after the outage by {'the sweep' if swept else 'the watch'}")
        finally:
            cut.stop()
            print(f"operator log: {cut.log_path}")
