"""Two peered replicas (the chart's HA setup): one works, the other takes over when it dies.

Kopf peering is pause-by-priority: the lower-priority replica pauses while the higher one
lives, and resumes once the dead peer's record expires (60 s), hence the long wait. The
session's standalone operator is stopped for the duration (it would ignore peering) and
started again at the end (``no_operator``).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from operator_fixtures import (
    PEERING,
    Hub,
    OperatorProcess,
    computejob,
    install_peering,
    jobs_with_uid,
    no_operator,
    wait_for,
)

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]


def total_copies(member_apis: dict[str, Any], uid: str) -> int:
    return sum(len(jobs_with_uid(api, uid)) for api in member_apis.values())


def test_peered_replicas_fail_over(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    install_peering(hub_api)
    high = OperatorProcess(
        fleet.hub.kubeconfig,
        tmp_path / "high.log",
        extra=["--peering", PEERING, "--priority", "100"],
    )
    low = OperatorProcess(
        fleet.hub.kubeconfig, tmp_path / "low.log", extra=["--peering", PEERING, "--priority", "50"]
    )
    hub = Hub(hub_api, namespace)
    with no_operator(hub_api, member_clusters):
        try:
            high.start()
            wait_for(lambda: "following member" in high.log_path.read_text(), "high replica active")
            low.start()
            wait_for(
                lambda: "Activity 'login' succeeded" in low.log_path.read_text(), "low started"
            )
            first = hub.create(computejob("ha-first", origin="chengdu", run_seconds=600))
            hub.wait_phase("ha-first", "Running")
            assert total_copies(member_apis, first["metadata"]["uid"]) == 1
            quiet = low.log_path.read_text()
            assert "ha-first" not in quiet and "following member" not in quiet  # paused
            high.stop(signal.SIGKILL)  # no goodbye: its peering record must expire
            second = hub.create(computejob("ha-second", origin="chengdu", run_seconds=600))
            hub.wait_phase("ha-second", "Running", timeout=180)
            taken_over = low.log_path.read_text()
            assert "Resuming operations" in taken_over and "ha-second" in taken_over
            assert total_copies(member_apis, second["metadata"]["uid"]) == 1
            assert total_copies(member_apis, first["metadata"]["uid"]) == 1  # not re-created
        finally:
            high.stop()
            low.stop()
