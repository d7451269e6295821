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
from computegrid.scheduling.synthetic import reprobed, synthetic_fleet, synthetic_jobs


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
    parser.add_argument(
        "--operator-path",
        action="store_true",
        help="time the operator's decision path (compiled state + reservations + decision), "
        "side by side with compiling the state per decision as before",
    )
    parser.add_argument(
        "--pending", type=int, default=1000, help="reservations outstanding (--operator-path)"
    )
    parser.add_argument(
        "--probe-every",
        type=int,
        default=100,
        help="decisions between fleet changes that force a recompile (--operator-path)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clusters < 1 or args.jobs < 1 or args.nodes < 1:
        raise UsageError("--clusters, --jobs and --nodes must be at least 1")
    if args.operator_path:
        result = bench_operator_path(
            args.clusters, args.jobs, args.nodes, args.pending, args.probe_every, args.seed
        )
    else:
        result = bench(args.clusters, args.jobs, args.nodes, args.window, args.seed)
    print(json.dumps(result))
    return 0


def bench_operator_path(
    clusters: int, jobs: int, nodes: int, pending: int, probe_every: int, seed: int
) -> dict[str, Any]:
    """Decisions per second as the operator makes them, two ways, interleaved in one run.

    ``compiled``: ``fleet.Capacity`` (the state compiled once, each decision reserving on
    it; every ``probe_every`` decisions one member is probed again, round robin, and its
    rows are refreshed with its outstanding reservations re-applied). ``per_decision``: the
    earlier path, a FleetState compiled from the snapshots and every outstanding reservation
    re-applied before each decision. Both keep ``pending`` reservations outstanding (a
    sliding window).

    Timed in this process's CPU seconds, not wall time: on a machine shared with other work
    the wall clock counts waiting for a core; CPU seconds are what a decision costs.
    """
    from computegrid.fleet.capacity import Capacity

    latency = load_latency_model()
    cities = sorted({c.location for c in load_national_fleet().clusters})
    origins = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu", "chongqing", *cities]
    snapshots = list(synthetic_fleet(clusters, cities, nodes=nodes, seed=seed))
    stream = list(synthetic_jobs(jobs, origins, seed=seed + 1))
    scheduler = Scheduler()
    capacity = Capacity(latency, ttl=1e9)
    window: deque[str] = deque()
    old: deque[tuple[int, Any]] = deque()
    spent = {"compiled": 0.0, "per_decision": 0.0}
    generation = 0
    for i, job in enumerate(stream):
        if i and i % probe_every == 0:
            # A probe of one member (round robin) brings a new snapshot: its pods' requests
            # moved. The compiled path refreshes that member; the old path compiles anyway.
            generation += 1
            member = (i // probe_every) % len(snapshots)
            snapshots[member] = reprobed(snapshots[member], i)
        t0 = time.process_time()
        state = capacity.state(generation, lambda: snapshots)
        result = scheduler.schedule(job, state)
        if isinstance(result, Decision):
            uid = f"j{i}"
            capacity.reserve(uid, result.cluster.name, job)
            window.append(uid)
            if len(window) > pending:
                capacity.release(window.popleft())
        spent["compiled"] += time.process_time() - t0
        t0 = time.process_time()
        fresh = FleetState(snapshots, latency)
        for index, held in old:
            try:
                fresh.reserve(index, held)
            except ValueError:
                continue
        result = scheduler.schedule(job, fresh)
        if isinstance(result, Decision):
            old.append((result.index, job))
            if len(old) > pending:
                old.popleft()
        spent["per_decision"] += time.process_time() - t0
    compiled = jobs / spent["compiled"]
    per_decision = jobs / spent["per_decision"]
    return {
        "clusters": clusters,
        "nodes": clusters * nodes,
        "jobs": jobs,
        "pending_reservations": pending,
        "recompile_every": probe_every,
        "compiles": capacity.compiled,
        "members_refreshed": capacity.refreshed,
        "clock": "process CPU seconds",
        "decisions_per_s": round(compiled),
        "per_decision_compile_decisions_per_s": round(per_decision, 1),
        "ratio": round(compiled / per_decision, 1),
    }


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
