"""The operator places ComputeJobs by latency class and power, and explains itself.

Runs ``computegrid run`` against the session's test fleet (hub + chengdu-chongqing-chongqing,
chengdu-chongqing-tianfu, gansu-qingyang), so every assertion is about real API servers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client
from operator_fixtures import (
    GROUP,
    VERSION,
    Hub,
    OperatorProcess,
    computejob,
    jobs_with_uid,
    member_namespace,
    wait_for,
)

from computegrid import testbed

pytest_plugins = ["operator_fixtures"]


def member_statuses(hub_api: Any) -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(hub_api).list_cluster_custom_object(
        GROUP, VERSION, "memberclusters"
    )["items"]
    return {mc["metadata"]["name"]: mc.get("status") or {} for mc in items}


def test_member_status_is_probed(operator: OperatorProcess, hub_api: Any) -> None:
    statuses = member_statuses(hub_api)
    tianfu = statuses["chengdu-chongqing-tianfu"]
    assert tianfu["computeTypes"] == ["general", "intelligent", "supercomputing"]
    assert float(tianfu["allocatable"]["cpu"]) >= 64
    assert tianfu["power"]["carbonIntensity"] == 140.4  # Sichuan's grid factor, node labels
    ready = next(c for c in tianfu["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"]
    assert tianfu["lastProbeTime"]


def test_high_chengdu_job_stays_within_5ms(
    operator: OperatorProcess,
    hub_api: Any,
    member_apis: dict[str, Any],
    namespace: str,
) -> None:
    hub = Hub(hub_api, namespace)
    created = hub.create(computejob("quote-engine", origin="chengdu", sensitivity="high"))
    status = hub.wait_phase("quote-engine", "Scheduled", "Running", "Succeeded")
    placement = status["placement"]
    assert placement["latencyMs"] <= 5.0
    assert placement["cluster"] == "chengdu-chongqing-tianfu"  # 2 ms and the greenest nearby
    assert placement["breakdown"] and placement["nearestCluster"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Scheduled"]["status"] == "True"
    remote = status["remote"]
    assert remote["cluster"] == placement["cluster"]
    assert remote["namespace"] == member_namespace(namespace) == f"cgtest-hub-{namespace}"
    # "Scheduled" is written when the placement is recorded, before the member is touched:
    # the Job follows (at once on a quiet machine, later on a busy one).
    member = member_apis[placement["cluster"]]
    jobs = wait_for(lambda: jobs_with_uid(member, created["metadata"]["uid"]), "the member Job")
    assert len(jobs) == 1
    job = jobs[0]
    assert job.metadata.labels["computegrid.io/origin-cluster"] == "cgtest-hub"
    assert job.spec.template.spec.node_selector == {"computegrid.io/compute-type": "general"}
    assert job.spec.template.spec.containers[0].resources.requests["cpu"] == "1"
    for other, api in member_apis.items():
        if other != placement["cluster"]:
            assert jobs_with_uid(api, created["metadata"]["uid"]) == []
    wait_for(
        lambda: "Scheduled" in {e.reason for e in hub.events("quote-engine")}, "Scheduled Event"
    )
    dispatched = wait_for(
        lambda: (
            {c["type"]: c for c in hub.status("quote-engine")["conditions"]}.get(
                "Dispatched", {}
            ).get("status")
            == "True"
        ),
        "Dispatched=True",
    )
    assert dispatched


def test_low_job_goes_to_the_greenest_member(
    operator: OperatorProcess, hub_api: Any, namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("nightly-etl", origin="shanghai", sensitivity="low"))
    status = hub.wait_phase("nightly-etl", "Scheduled", "Running", "Succeeded")
    statuses = member_statuses(hub_api)
    greenest = min(statuses, key=lambda name: statuses[name]["power"]["carbonIntensity"])
    assert status["placement"]["cluster"] == greenest
    assert status["placement"]["carbonSavedGPerHour"] >= 0
    assert len(status["placement"]["alternatives"]) == 2  # the two other members, feasible


def test_printer_columns(
    operator: OperatorProcess, fleet: testbed.FleetInfo, hub_api: Any, namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("columns", origin="chengdu", sensitivity="high"))
    hub.wait_phase("columns", "Scheduled", "Running", "Succeeded")
    kubectl = str(Path(fleet.bin_dir) / "kubectl")
    # Not `get cj`: kubectl resolves that short name to batch/v1 CronJob first.
    out = subprocess.run(
        [kubectl, "--kubeconfig", fleet.hub.kubeconfig, "-n", namespace, "get", "computejobs"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    header, row = out.splitlines()[:2]
    for column in ("PHASE", "CLUSTER", "HUB", "LATENCY-MS"):
        assert column in header
    assert "chengdu-chongqing-tianfu" in row and "chengdu-chongqing" in row


def test_bad_input_is_a_condition_and_an_event(
    operator: OperatorProcess, hub_api: Any, namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("nowhere", origin="atlantis"))
    body = computejob("rooted", origin="chengdu")
    body["spec"]["template"]["spec"]["hostNetwork"] = True
    hub.create(body)
    for name, words in (("nowhere", "atlantis"), ("rooted", "hostNetwork")):
        status = hub.wait_phase(name, "Pending")
        scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
        assert scheduled["status"] == "False" and scheduled["reason"] == "InvalidSpec"
        assert words in scheduled["message"]
        wait_for(
            lambda n=name: "InvalidSpec" in {e.reason for e in hub.events(n)}, "InvalidSpec Event"
        )
    hub.create(computejob("after-bad-input", origin="chengdu"))
    hub.wait_phase("after-bad-input", "Scheduled", "Running", "Succeeded")  # still alive


def test_metrics_are_served(operator: OperatorProcess, hub_api: Any, namespace: str) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("counted", origin="chengdu"))
    hub.wait_phase("counted", "Scheduled", "Running", "Succeeded")
    text = operator.metrics()
    assert 'computegrid_decisions_total{outcome="scheduled"}' in text
    assert 'computegrid_member_ready{cluster="gansu-qingyang"} 1.0' in text
    assert "computegrid_member_probe_seconds_bucket" in text
    assert "computegrid_scheduling_seconds_count" in text
    assert "computegrid_dispatch_seconds_count" in text
    assert "computegrid_jobs{" in text
    assert operator.healthz() == 200  # Kopf's liveness endpoint


def test_logs_are_structured(operator: OperatorProcess, hub_api: Any, namespace: str) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("logged", origin="chengdu"))
    hub.wait_phase("logged", "Scheduled", "Running", "Succeeded")

    def about_logged() -> list[dict[str, Any]]:
        lines = operator.log_path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if (r.get("object") or {}).get("name") == "logged"]

    records = wait_for(about_logged, "JSON log lines about the ComputeJob")
    assert all("message" in r and "timestamp" in r for r in records)
