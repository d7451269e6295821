"""The MultiKueue harness's own parts: quotas, the objects it creates, the Jobs, the summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tests.tools.kueuerun import (
    MULTIKUEUE,
    QUEUE,
    KueueRunConfig,
    batch_job,
    hub_object_writes,
    job_finished,
    kube_quantity_ki,
    kueue_config,
    main,
    manager_objects,
    worker_objects,
)
from tests.tools.sidebyside import compare, ratio


@pytest.mark.parametrize(
    ("text", "ki"),
    [("2048Ki", 2048), ("3Mi", 3072), ("64Gi", 64 * 1024**2), ("1Ti", 1024**3), ("4096", 4)],
)
def test_memory_quantities_in_kib(text: str, ki: int) -> None:
    assert kube_quantity_ki(text) == ki


def test_hub_gets_a_multikueue_check_on_its_cluster_queue_and_workers_do_not() -> None:
    hub = manager_objects("ns", {"cpu": "8000m"}, {"a": "bench-a", "b": "bench-b"})
    kinds = [o["kind"] for o in hub]
    assert kinds.index("MultiKueueCluster") < kinds.index("MultiKueueConfig")
    assert kinds.index("AdmissionCheck") < kinds.index("ClusterQueue")
    by_kind = {o["kind"]: o for o in hub}
    assert by_kind["AdmissionCheck"]["spec"]["controllerName"] == MULTIKUEUE
    assert by_kind["MultiKueueConfig"]["spec"]["clusters"] == ["a", "b"]
    secrets = [
        o["spec"]["clusterSource"]["kubeConfig"] for o in hub if o["kind"] == "MultiKueueCluster"
    ]
    assert secrets == [
        {"locationType": "Secret", "location": "bench-a"},
        {"locationType": "Secret", "location": "bench-b"},
    ]
    checks = by_kind["ClusterQueue"]["spec"]["admissionChecksStrategy"]["admissionChecks"]
    assert checks == [{"name": QUEUE}]
    worker_cq = next(o for o in worker_objects("ns", {"cpu": "1"}) if o["kind"] == "ClusterQueue")
    assert "admissionChecksStrategy" not in worker_cq["spec"]
    local = next(o for o in hub if o["kind"] == "LocalQueue")
    assert local["metadata"]["namespace"] == "ns"


def test_jobs_are_created_as_the_webhook_would_leave_them() -> None:
    job = batch_job("kq-1", "ns", KueueRunConfig(fleet=Path("f"), cpu="250m", run_seconds=2.5))
    assert job["spec"]["suspend"] is True
    assert job["spec"]["managedBy"] == MULTIKUEUE
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
    assert job["metadata"]["labels"]["computegrid.io/job-uid"] == "kq-1"
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"]["computegrid.io/run-seconds"] == "2.5"
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "250m"


def test_each_manager_gets_its_own_ports_and_no_leader_election() -> None:
    one, two = kueue_config(1001, 2001, Path("/c")), kueue_config(1002, 2002, Path("/c"))
    assert one["health"] != two["health"] and one["webhook"] != two["webhook"]
    assert one["leaderElection"] == {"leaderElect": False}
    assert one["internalCertManagement"] == {"enable": False}
    assert one["integrations"]["frameworks"] == ["batch/job"]


def test_job_finished_reads_conditions() -> None:
    def job(kind: str, status: str) -> dict[str, object]:
        return {"status": {"conditions": [{"type": kind, "status": status}]}}

    assert job_finished(job("Complete", "True")) == "Succeeded"
    assert job_finished(job("Failed", "True")) == "Failed"
    assert job_finished(job("Complete", "False")) is None
    assert job_finished({"status": {}}) is None


def test_hub_object_writes_count_jobs_workloads_and_events_only() -> None:
    before = Counter({("jobs", "", "POST", "201"): 2})
    after = Counter(
        {
            ("jobs", "", "POST", "201"): 5,
            ("workloads", "status", "APPLY", "200"): 4,
            ("workloads", "", "PUT", "409"): 2,
            ("events", "", "POST", "201"): 1,
            ("workloads", "", "GET", "200"): 50,  # a read
            ("leases", "", "PUT", "200"): 9,  # not the jobs' traffic
        }
    )
    assert hub_object_writes(before, after) == {
        "errors workloads 409": 2,
        "events POST": 1,
        "jobs POST": 3,
        "workloads PUT": 2,
        "workloads/status APPLY": 4,
    }


def test_compare_puts_computegrid_over_kueue() -> None:
    kueue = {"dispatches_per_s": 2.0, "cpu_per_job_s": 0.1, "restart": {"first_dispatch_s": 2}}
    grid = {"dispatches_per_s": 5.0, "operator": {"cpu_per_job_s": 0.05}, "first_dispatch_s": 8}
    rows = compare(kueue, grid)
    assert rows["dispatches_per_s"]["computegrid_over_kueue"] == 2.5
    assert rows["cpu_per_job_s"]["computegrid_over_kueue"] == 0.5
    assert rows["first_dispatch_after_start_s"]["computegrid_over_kueue"] == 4.0
    assert rows["rss_peak_mb"]["computegrid_over_kueue"] is None  # missing on both sides
    assert ratio(1, 0) is None


def test_cli_rejects_a_missing_kueue_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.json"
    fleet.write_text("{}")
    with pytest.raises(SystemExit):
        main(["--fleet", str(fleet), "--kueue-home", str(tmp_path)])
    assert "--kueue-home: no bin/kueue" in capsys.readouterr().err
