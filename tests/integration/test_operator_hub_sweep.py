"""A ComputeJob deleted while the operator cannot see the hub: its member Job must still go,
and the hub sweep is what removes it.

When the hub comes back, Kopf resumes the ComputeJob watch from the resourceVersion it last
saw, and the API server, which still has that history, would deliver the DELETED event. A
real hub loses the history after a while (compaction) and then answers the resumed watch with
an in-stream 410: the client must list afresh, and a list reports no deletions. Left to
timing, either can happen, so the test decides: the fault proxy in front of the hub answers
the first resumed ComputeJob watch after the outage with that 410 (``watch_gone``), Kopf must
relist, and only the periodic metadata sweep (``--hub-sweep-interval``) can find the job gone.
The proof is the sweep's own log line and counter, the 410 served exactly once, and the member
Job removed. The sweep's logic is unit-tested (``tests/unit/test_jobcache_sweep.py``), the
proxy's rule in ``tests/unit/test_faultproxy.py``.
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


def test_a_job_deleted_while_the_hub_was_unreachable_is_removed_by_the_sweep(
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
        cut = OperatorProcess(
            str(config), tmp_path / "cut-off.log", extra=["--hub-sweep-interval", "3"]
        )
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
            wait_for(lambda: gone.hits == 1, "Kopf resuming the ComputeJob watch (410)", 120)
            wait_for(
                lambda: jobs_with_uid(member, uid) == [],
                "the member Job of the deleted ComputeJob removed",
                120,
            )
            log = cut.log_path.read_text()
            swept = [line for line in log.splitlines() if "deleted while unwatched" in line]
            # Jobs of other modules deleted during the partition (a shared hub) are swept
            # too: ours exactly once, and the counter counts every line.
            assert len([line for line in swept if uid in line]) == 1, swept
            assert counter(cut.metrics(), SWEPT) == float(len(swept))
            assert proxy.summary()["faults"] == {"watch_gone": 1}
            took = time.monotonic() - began
            print(f"removed by the sweep after a forced relist; the test took {took:.1f} s")
        finally:
            cut.stop()
            print(f"operator log: {cut.log_path}")
