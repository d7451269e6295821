"""A ComputeJob deleted while the operator cannot see the hub: its member Job must still go,
and the relist of the hub's ComputeJobs is what finds it gone.

A list reports no deletions: the operator's ComputeJob watch (handlers/jobfeed.py) relists
after any failure, and a job its cache holds that the list does not hold was deleted while
nothing watched. The fault proxy in front of the hub also answers the first ComputeJob watch
after the outage with an in-stream 410 (``watch_gone``: a compacted history, as a real hub
has after a while), which must relist once more and change nothing. The proof is the
operator's log line and counter, the 410 served exactly once, and the member Job removed.
The proxy's rule is unit-tested in ``tests/unit/test_faultproxy.py``.
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
SWEPT = "computegrid_hub_sweep_removed_total"


def counter(metrics: str, name: str) -> float:
    """A counter's value in a Prometheus text exposition (0 when not there yet)."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def test_a_job_deleted_while_the_hub_was_unreachable_is_removed_at_the_relist(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    hub = Hub(hub_api, namespace)
    with (
        no_operator(hub_api, member_clusters),
        FaultProxy.from_kubeconfig(fleet.hub.kubeconfig) as proxy,
    ):
        config = proxy.write_kubeconfig(tmp_path / "hub-through-proxy.yaml")
        cut = OperatorProcess(str(config), tmp_path / "cut-off.log")
        cut.start()
        try:
            created = hub.create(computejob("long", origin="chengdu", run_seconds=900))
            uid = created["metadata"]["uid"]
            status = hub.wait_phase("long", "Running")
            member = member_apis[status["remote"]["cluster"]]
            assert len(jobs_with_uid(member, uid)) == 1
            proxy.partition(True)  # the operator loses the hub (its watches are cut)
            time.sleep(1.0)  # the cut has reached the operator's side
            hub.delete("long")
            wait_for(lambda: hub.gone("long"), "the ComputeJob gone from the hub")
            # Its history "compacted": the resumed ComputeJob watch gets a 410, once.
            gone = proxy.watch_gone(r"/computejobs$", count=1)
            proxy.partition(False)
            wait_for(lambda: gone.hits == 1, "the ComputeJob watch resumed (410)", 120)
            wait_for(
                lambda: jobs_with_uid(member, uid) == [],
                "the member Job of the deleted ComputeJob removed",
                120,
            )
            log = cut.log_path.read_text()
            swept = [line for line in log.splitlines() if "deleted while unwatched" in line]
            # Jobs of other modules deleted during the partition (a shared hub) are found
            # too: ours exactly once, and the counter counts every line.
            assert len([line for line in swept if uid in line]) == 1, swept
            assert counter(cut.metrics(), SWEPT) == float(len(swept))
            assert proxy.summary()["faults"] == {"watch_gone": 1}
            took = time.monotonic() - began
            print(f"removed after the relist (and a forced one); the test took {took:.1f} s")
        finally:
            cut.stop()
            print(f"operator log: {cut.log_path}")
