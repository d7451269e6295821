"""Crash anywhere: ComputeJobs submitted while the operator is SIGKILLed at seeded random
moments and restarted each time. Every ComputeJob must end terminal, with exactly one member
Job ever created for it (counted by watches, not by the survivors) and no orphans.

CI size: 100 jobs, 5 kills. ``COMPUTEGRID_SUITES=full``: 500 jobs, 20 kills (the issue's).
The summary goes to out/suites/crash.json.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from typing import Any

from operator_fixtures import (
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    suite_size,
    wait_for,
    write_summary,
)

pytest_plugins = ["operator_fixtures"]
SEED = 20261129
ORIGINS = ("chengdu", "shanghai", "beijing", "chongqing", "guangzhou", "hangzhou")


def test_crash_anywhere_loses_nothing_and_runs_nothing_twice(
    operator: OperatorProcess, hub_api: Any, member_apis: dict[str, Any], namespace: str
) -> None:
    jobs, kills = suite_size(100, 500), suite_size(5, 20)
    rng = random.Random(SEED)
    hub = Hub(hub_api, namespace)
    bodies = []
    for i in range(jobs):
        origin = rng.choice(ORIGINS)
        # The test fleet's members are in the west: only Chengdu and Chongqing users are
        # within a high or medium budget; the rest send latency-tolerant work.
        near = origin in ("chengdu", "chongqing")
        bodies.append(
            computejob(
                f"crash-{i:04d}",
                origin=origin,
                sensitivity=rng.choice(("high", "medium", "low")) if near else "low",
                cpu="100m",
                run_seconds=rng.uniform(1, 6),
            )
        )
    submitted: list[str] = []
    started = time.monotonic()
    with CreationLog(member_apis, namespace) as log:

        def submit() -> None:
            for body in bodies:
                submitted.append(hub.create(body)["metadata"]["uid"])

        submitter = threading.Thread(target=submit, daemon=True)
        submitter.start()
        # Kill moments spread over the submission and the dispatch that follows it.
        horizon = max(20.0, jobs * 0.08)
        moments = sorted(rng.uniform(0.5, horizon) for _ in range(kills))
        for moment in moments:
            time.sleep(max(0.0, started + moment - time.monotonic()))
            operator.stop(signal.SIGKILL)
            time.sleep(rng.uniform(0.0, 1.5))
            operator.start()
        submitter.join(timeout=300)
        assert len(submitted) == jobs

        def terminal() -> bool:
            phases = [(j.get("status") or {}).get("phase") for j in hub_jobs(hub_api, namespace)]
            return sum(p in ("Succeeded", "Failed") for p in phases) == jobs

        try:
            wait_for(terminal, f"all {jobs} ComputeJobs terminal", 420)
        except AssertionError:
            stuck = {
                j["metadata"]["name"]: (j.get("status") or {}).get("phase")
                for j in hub_jobs(hub_api, namespace)
                if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            }
            shown = dict(list(stuck.items())[:20])
            raise AssertionError(f"not terminal: {len(stuck)}: {shown}") from None
        duplicates = log.duplicates()
        created = {uid: len(where) for uid, where in log.created.items()}
    items = hub_jobs(hub_api, namespace)
    phases: dict[str, int] = {}
    for item in items:
        phase = (item.get("status") or {}).get("phase")
        phases[phase] = phases.get(phase, 0) + 1
    known = {i["metadata"]["uid"] for i in items}
    orphans = [uid for uid in created if uid not in known]
    summary = {
        "jobs": jobs,
        "kills": kills,
        "seed": SEED,
        "phases": phases,
        "member_jobs_created": sum(created.values()),
        "computejobs_with_a_member_job": len(created),
        "duplicates": len(duplicates),
        "lost": jobs - len(created),
        "orphans": len(orphans),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_summary("crash", summary)
    assert not duplicates, f"ComputeJobs with more than one member Job created: {duplicates}"
    assert set(created) == set(submitted), "a ComputeJob never got its member Job"
    assert not orphans
    assert phases.get("Succeeded", 0) == jobs
