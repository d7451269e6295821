"""Opt-in measurement: create → member Job latency for 100 ComputeJobs on hub + 3 members.

Run with ``CG_BENCH=1 .venv/bin/pytest tests/integration/test_operator_bench.py -s``. The 100
ComputeJobs are created back to back (a burst, the harder case); a thread lists the
namespace's Jobs on every member every 100 ms and records when each uid first appears, so a
figure is (first seen on a member) − (just before the create call), within ~0.1 s. The
figures are printed and written to ``$CG_BENCH_OUT`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from operator_fixtures import Hub, OperatorProcess, computejob, wait_for

pytest_plugins = ["operator_fixtures"]
COUNT = 100

pytestmark = pytest.mark.skipif(not os.environ.get("CG_BENCH"), reason="opt-in: set CG_BENCH=1")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_create_to_member_job_latency(
    operator: OperatorProcess,
    hub_api: Any,
    member_apis: dict[str, Any],
    namespace: str,
    tmp_path: Path,
) -> None:
    hub = Hub(hub_api, namespace)
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        batches = [client.BatchV1Api(api) for api in member_apis.values()]
        while not stop.is_set():
            for batch in batches:
                for job in batch.list_namespaced_job(namespace, _request_timeout=5).items:
                    uid = job.metadata.labels.get("computegrid.io/job-uid")
                    if uid and uid not in seen:
                        seen[uid] = time.monotonic()
            time.sleep(0.1)

    poller = threading.Thread(target=watch, daemon=True)
    poller.start()
    started: dict[str, float] = {}
    try:
        for i in range(COUNT):
            origin = ("chengdu", "shanghai", "beijing", "chongqing")[i % 4]
            body = computejob(f"bench-{i:03d}", origin=origin, sensitivity="low", cpu="100m")
            t0 = time.monotonic()
            uid = hub.create(body)["metadata"]["uid"]
            started[uid] = t0
        wait_for(lambda: set(started) <= set(seen), f"{COUNT} member Jobs", 300)
    finally:
        stop.set()
        poller.join(timeout=10)
    latencies = [seen[uid] - t0 for uid, t0 in started.items()]
    result = {
        "jobs": COUNT,
        "members": len(member_apis),
        "p50_s": round(percentile(latencies, 0.50), 3),
        "p99_s": round(percentile(latencies, 0.99), 3),
        "max_s": round(max(latencies), 3),
        "mean_s": round(statistics.mean(latencies), 3),
        "burst_s": round(max(started.values()) - min(started.values()), 3),
    }
    out = Path(os.environ.get("CG_BENCH_OUT", tmp_path / "bench.json"))
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\ncreate -> member Job latency: {json.dumps(result)} (written to {out})")
    assert result["p99_s"] < 120
