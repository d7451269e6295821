"""``computegrid bench``: time the scheduling core on a generated fleet; one JSON object.

Jobs arrive one after another and each placed job holds its capacity for the next ``--window``
decisions, then leaves, so the fleet stays partly full as it would in service rather than
filling up and turning every later decision into a cheap rejection.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque
from typing import Any

from computegrid.cli.errors import UsageError
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.scheduling import Decision, FleetState, Scheduler
from computegrid.scheduling.synthetic import synthetic_fleet, synthetic_jobs


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="time the scheduling core; prints decisions_per_s"
    )
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=4, help="nodes per cluster")
    parser.add_argument("--window", type=int, default=200, help="decisions a job stays placed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object (the default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clusters < 1 or args.jobs < 1 or args.nodes < 1:
        raise UsageError("--clusters, --jobs and --nodes must be at least 1")
    print(json.dumps(bench(args.clusters, args.jobs, args.nodes, args.window, args.seed)))
    return 0


def bench(clusters: int, jobs: int, nodes: int, window: int, seed: int) -> dict[str, Any]:
    latency = load_latency_model()
    cities = sorted({c.location for c in load_national_fleet().clusters})
    origins = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu", "chongqing", *cities]
    state = FleetState(synthetic_fleet(clusters, cities, nodes=nodes, seed=seed), latency)
    stream = synthetic_jobs(jobs, origins, seed=seed + 1)
    scheduler = Scheduler()
    running: deque[tuple[Any, dict[str, int]]] = deque()
    times: list[float] = []
    placed = 0
    started = time.perf_counter()
    for job in stream:
        t0 = time.perf_counter()
        result = scheduler.schedule(job, state)
        if isinstance(result, Decision):
            running.append((job, state.reserve(result.index, job)))
            placed += 1
        times.append(time.perf_counter() - t0)
        if len(running) > window:
            old_job, where = running.popleft()
            state.release(where, old_job)
    elapsed = time.perf_counter() - started
    times.sort()
    return {
        "clusters": clusters,
        "nodes": clusters * nodes,
        "jobs": jobs,
        "placed": placed,
        "decisions_per_s": round(jobs / sum(times)),
        "wall_s": round(elapsed, 3),
        "p50_ms": round(statistics.median(times) * 1000, 4),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))] * 1000, 4),
    }
