"""A burst of 100 ComputeJobs on hub + 3 members: each gets exactly one member Job.

The 100 ComputeJobs are created back to back (the harder case for idempotency and for the
capacity the operator promises between probes). A thread lists the namespace's Jobs on every
member every 100 ms and records when each uid first appears, so the test also measures
create → member Job latency, (first seen on a member) − (just before the create call), within
~0.1 s. The figures are printed (``-s``) and written to ``$CG_BENCH_OUT`` (default: the test's
tmp dir); they are a measurement, not an assertion: speed belongs in benchmarks.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from operator_fixtures import Hub, OperatorProcess, computejob, member_namespace, wait_for

pytest_plugins = ["operator_fixtures"]
COUNT = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_a_burst_of_jobs_gets_exactly_one_member_job_each(
    operator: OperatorProcess,
    hub_api: Any,
    member_apis: dict[str, Any],
    namespace: str,
    tmp_path: Path,
) -> None:
    hub = Hub(hub_api, namespace)
    owned = member_namespace(namespace)
    seen: dict[str, float] = {}
    copies: dict[str, set[tuple[str, str]]] = {}  # uid -> {(member, job name)}
    stop = threading.Event()

    def watch() -> None:
        batches = {name: client.BatchV1Api(api) for name, api in member_apis.items()}
        while not stop.is_set():
            for member, batch in batches.items():
                for job in batch.list_namespaced_job(owned, _request_timeout=5).items:
                    uid = job.metadata.labels.get("computegrid.io/job-uid")
                    if uid:
                        copies.setdefault(uid, set()).add((member, job.metadata.name))
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
    assert set(copies) == set(started)  # no member Job without a ComputeJob of this test
    doubles = {uid: where for uid, where in copies.items() if len(where) != 1}
    assert not doubles, f"ComputeJobs with more than one member Job: {doubles}"
