"""Standby resume: two peered replicas hand over back and forth while jobs are dispatched.

A higher-priority replica that starts makes the active one pause (Kopf peering); when it
stops gracefully the paused one resumes. Each handover happens while ComputeJobs are being
submitted and dispatched. A resumed replica must act on what the hub says, not on what it
remembered: no member Job created twice, none deleted while live (that would show as a
second creation or a Failed job), every job Succeeded.

CI size: 60 jobs, 4 handovers. ``COMPUTEGRID_SUITES=full``: 300 jobs, 12 handovers.
The summary goes to out/suites/standby.json.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from operator_fixtures import (
    PEERING,
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    install_peering,
    no_operator,
    suite_size,
    wait_for,
    write_summary,
)

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]


def test_handovers_back_and_forth_lose_nothing_and_run_nothing_twice(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    jobs, handovers = suite_size(60, 300), suite_size(4, 12)
    install_peering(hub_api)
    base = OperatorProcess(
        fleet.hub.kubeconfig,
        tmp_path / "base.log",
        extra=["--peering", PEERING, "--priority", "50"],
    )
    hub = Hub(hub_api, namespace)
    submitted: list[str] = []
    started = time.monotonic()
    with no_operator(hub_api, member_clusters):
        try:
            base.start()
            wait_for(lambda: "following member" in base.log_path.read_text(), "base replica active")
            with CreationLog(member_apis, namespace) as log:

                def submit() -> None:
                    for i in range(jobs):
                        body = computejob(
                            f"sb-{i:04d}",
                            origin="shanghai",
                            sensitivity="low",
                            cpu="100m",
                            run_seconds=2,
                        )
                        submitted.append(hub.create(body)["metadata"]["uid"])
                        time.sleep(0.05)

                submitter = threading.Thread(target=submit, daemon=True)
                submitter.start()
                for round_ in range(handovers):
                    high = OperatorProcess(
                        fleet.hub.kubeconfig,
                        tmp_path / f"high-{round_}.log",
                        extra=["--peering", PEERING, "--priority", "100"],
                    )
                    high.start()  # base pauses
                    wait_for(
                        lambda h=high: "following member" in h.log_path.read_text(),
                        "the high replica active",
                        120,
                    )
                    time.sleep(2.0)
                    high.stop()  # graceful: its peering record goes, base resumes
                submitter.join(timeout=300)
                wait_for(
                    lambda: (
                        sum(
                            (j.get("status") or {}).get("phase") == "Succeeded"
                            for j in hub_jobs(hub_api, namespace)
                        )
                        == jobs
                    ),
                    f"all {jobs} ComputeJobs Succeeded",
                    600,
                )
                duplicates = log.duplicates()
                created = dict(log.created)
            resumed = base.log_path.read_text().count("Resuming operations")
        finally:
            base.stop()
    summary = {
        "jobs": jobs,
        "handovers": handovers,
        "base_resumed": resumed,
        "member_jobs_created": sum(len(w) for w in created.values()),
        "duplicates": len(duplicates),
        "lost": jobs - len(created),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_summary("standby", summary)
    assert not duplicates, duplicates
    assert set(created) == set(submitted)
    assert resumed >= 1  # it really paused and resumed
