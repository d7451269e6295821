"""A slow hub: the operator's hub behind a fault proxy that adds latency and answers 504 to
status writes, with its watches cut while ComputeJobs keep coming. Once the hub recovers,
every ComputeJob must converge (terminal, exactly one member Job), the ComputeJob watch must
be re-established (jobs created after the cuts are placed), and each ComputeJob must have
cost the hub at most 4 writes over its life, its Events included (from the hub's
``apiserver_request_total``, 504s included).

CI size: 100 jobs. ``COMPUTEGRID_SUITES=full``: 1,000. Summary in out/suites/slow-hub.json.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from operator_fixtures import (
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    no_operator,
    suite_size,
    wait_for,
    write_summary,
)
from tests.tools.faultproxy import FaultProxy
from tests.tools.loadrun import hub_writes, request_totals

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]
STATUS = r"/apis/computegrid\.io/v1alpha1/namespaces/[^/]+/computejobs/[^/]+/status$"


def test_a_slow_hub_converges_with_few_writes(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    jobs = suite_size(100, 1000)
    hub = Hub(hub_api, namespace)
    with no_operator(hub_api, member_clusters):  # its counts stop before the restart
        before = request_totals(hub_api)
        started = time.monotonic()
        with FaultProxy.from_kubeconfig(fleet.hub.kubeconfig) as proxy:
            config = proxy.write_kubeconfig(tmp_path / "hub-through-proxy.yaml")
            slow = OperatorProcess(str(config), tmp_path / "slow-hub.log")
            slow.start()
            try:
                # Active through the proxy: its ComputeJob watch is open there (the MemberClusters'
                # Ready conditions may still be the paused session operator's).
                wait_for(
                    lambda: (
                        proxy.requests_seen("WATCH computejobs") >= 1
                        and "following member" in slow.log_path.read_text()
                    ),
                    "the operator watching the hub through the proxy",
                    120,
                )
                with CreationLog(member_apis, namespace) as log:
                    # The slow phase: every call 0.5 s late, 30 status writes answered 504.
                    proxy.delay(0.5)
                    proxy.status(504, "PATCH", STATUS, count=30)
                    first = [f"slow-{i:04d}" for i in range(jobs // 2)]
                    second = [f"after-{i:04d}" for i in range(jobs - len(first))]

                    def submit(names: list[str]) -> None:
                        for name in names:
                            hub.create(computejob(name, origin="shanghai", sensitivity="low",
                                                  cpu="100m", run_seconds=1))  # fmt: skip

                    submitter = threading.Thread(target=submit, args=(first,), daemon=True)
                    submitter.start()
                    for _ in range(3):
                        time.sleep(3.0)
                        proxy.reset_watches()
                    submitter.join(timeout=600)
                    # Slow until the 504s have all been served (or two minutes): a real outage.
                    wait_for(
                        lambda: proxy.summary()["faults"].get("status_504", 0) >= 30,
                        "the 504s served",
                        120,
                    )
                    recovered = time.monotonic()
                    proxy.clear()  # the hub recovers
                    submit(second)  # placed only through a re-established ComputeJob watch

                    def converged() -> bool:
                        items = hub_jobs(hub_api, namespace)
                        done = sum(
                            (j.get("status") or {}).get("phase") == "Succeeded" for j in items
                        )
                        return done == jobs

                    wait_for(converged, f"all {jobs} ComputeJobs Succeeded after recovery", 600)
                    converged_s = time.monotonic() - recovered
                    time.sleep(3.0)  # let the last coalesced writes land before counting
                    duplicates = log.duplicates()
                    created = dict(log.created)
            finally:
                slow.stop()
                print(f"operator log: {slow.log_path}")
            faults = proxy.summary()
        after = request_totals(hub_api)
    writes = hub_writes(before, after)
    ours = {k: v for k, v in writes.items() if k.startswith("computejobs") and "errors" not in k}
    # The test's own creates are POSTs on computejobs: not the operator's.
    operator_writes = sum(v for k, v in ours.items() if not k.endswith(" POST")) + sum(
        v for k, v in writes.items() if k.startswith("computejobs errors")
    )
    events = writes.get("events POST", 0)
    per_job = operator_writes / jobs
    all_in = (operator_writes + events) / jobs
    summary = {
        "jobs": jobs,
        "watch_resets": faults["watches_reset"],
        "faults": faults["faults"],
        "converged_s_after_recovery": round(converged_s, 1),
        "duplicates": len(duplicates),
        "lost": jobs - len(created),
        "hub_writes": writes,
        "computejob_writes_per_job": round(per_job, 2),
        "events_per_job": round(events / jobs, 2),
        "writes_per_job_events_included": round(all_in, 2),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_summary("slow-hub", summary)
    assert not duplicates and len(created) == jobs
    assert faults["faults"], "no fault was injected"
    assert all_in <= 4, f"{per_job:.2f} writes per ComputeJob and {events / jobs:.2f} Events"
