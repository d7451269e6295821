"""Job traces: a seeded synthetic generator and a loader for the Alibaba GPU trace v2023.

A trace is a list of ``SimJob`` sorted by arrival: the core's ``JobRequest`` plus arrival
time, run time and a category. Pure and seeded (``random.Random``): the same seed gives the
same trace.

The synthetic mix follows the policy text's examples (estimated shares, our assumption):
latency-tolerant AI training and batch inference, rendering, offline analytics, backup and
scientific simulation; latency-critical autonomous driving and trading (high, 5 ms) and
telemedicine (medium, 20 ms). Origins are weighted toward the east (about 80 % of jobs from
eastern provinces, by the rough size of each city's digital economy). A critical job only
comes from a city with a cluster of its compute type inside its budget (no policy could
serve it otherwise). Arrivals follow a diurnal rate ``1 + A·cos(2π(h − peak)/24)`` per
category; durations are log-normal, clipped to the category's range (minutes to a day).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from computegrid.api.common import GPU, ComputeType, LatencySensitivity
from computegrid.fleet_data import FleetCluster, load_cities
from computegrid.scheduling import (
    LATENCY_BUDGET_MS,
    DataInput,
    JobData,
    JobRequest,
    LatencyModel,
    NetworkModel,
)

GIB = 2**30
DAY_S = 86_400.0

# National Bureau of Statistics division (the same as fleet.yaml's region field).
EAST_PROVINCES = frozenset(
    {
        "Beijing", "Tianjin", "Hebei", "Liaoning", "Shanghai", "Jiangsu", "Zhejiang",
        "Fujian", "Shandong", "Guangdong", "Hainan", "Hong Kong", "Macau",
    }
)  # fmt: skip
WEST_PROVINCES = frozenset(
    {
        "Inner Mongolia", "Guangxi", "Chongqing", "Sichuan", "Guizhou", "Yunnan", "Tibet",
        "Shaanxi", "Gansu", "Qinghai", "Ningxia", "Xinjiang",
    }
)  # fmt: skip

# (city key, weight): estimated, weighted toward the east coast's big digital economies.
ORIGINS: tuple[tuple[str, float], ...] = (
    ("beijing", 14), ("shanghai", 14), ("shenzhen", 10), ("guangzhou", 9), ("hangzhou", 7),
    ("suzhou", 5), ("nanjing", 5), ("tianjin", 4), ("dongguan", 3), ("foshan", 3),
    ("ningbo", 3), ("jinan", 2), ("qingdao", 2), ("xiamen", 2), ("fuzhou", 2),
    ("shijiazhuang", 2), ("hefei", 3), ("wuhan", 3), ("zhengzhou", 2), ("changsha", 2),
    ("chengdu", 5), ("chongqing", 4), ("xian", 3),
)  # fmt: skip


def origin_region(city: str) -> str:
    """east / central / west of a city key, by its province (unknown cities: central)."""
    province = load_cities()[city].province if city in load_cities() else ""
    if province in EAST_PROVINCES:
        return "east"
    return "west" if province in WEST_PROVINCES else "central"


@dataclass(frozen=True, slots=True)
class SimJob:
    """One job of a trace: when it arrives, how long it runs once started, what it asks."""

    request: JobRequest
    arrival_s: float
    duration_s: float
    category: str
    deadline_s: float | None = None  # spec.timing.deadline; None: no window (start now)

    @property
    def latest_start_s(self) -> float | None:
        return None if self.deadline_s is None else self.deadline_s - self.duration_s


@dataclass(frozen=True)
class Category:
    """One kind of work of the synthetic mix (every number estimated)."""

    name: str
    weight: float
    sensitivity: LatencySensitivity
    compute_type: ComputeType
    cpu: tuple[float, ...]
    memory_gi: tuple[float, ...]
    gpu: tuple[float, ...]
    parallelism: tuple[int, ...]
    median_s: float
    sigma: float
    min_s: float
    max_s: float
    peak_hour: float = 14.0
    amplitude: float = 0.5


LOW, MEDIUM, HIGH = LatencySensitivity.LOW, LatencySensitivity.MEDIUM, LatencySensitivity.HIGH
GENERAL, GPU_T, HPC = ComputeType.GENERAL, ComputeType.INTELLIGENT, ComputeType.SUPERCOMPUTING
H = 3600.0
M = 60.0
CATEGORIES: tuple[Category, ...] = (
    Category("ai-training", 0.08, LOW, GPU_T, (16, 32), (128, 256), (4, 8), (1, 2, 4),
             6 * H, 0.8, 1 * H, 24 * H, amplitude=0.2),
    Category("batch-inference", 0.14, LOW, GPU_T, (8,), (32, 64), (1, 2), (1, 2, 4),
             1 * H, 0.8, 10 * M, 8 * H),
    Category("rendering", 0.12, LOW, GENERAL, (32,), (64, 128), (), (2, 4, 8),
             2 * H, 0.7, 15 * M, 12 * H, peak_hour=20.0),
    Category("analytics", 0.16, LOW, GENERAL, (16, 32), (64, 128), (), (1, 2, 4, 8),
             45 * M, 0.9, 5 * M, 6 * H),
    Category("backup", 0.10, LOW, GENERAL, (2,), (8,), (), (1,),
             30 * M, 0.7, 5 * M, 4 * H, peak_hour=2.0, amplitude=0.8),
    Category("scientific-simulation", 0.02, LOW, HPC, (32, 64), (128,), (), (1, 2),
             4 * H, 0.8, 30 * M, 24 * H, amplitude=0.2),
    Category("autonomous-driving", 0.12, HIGH, GPU_T, (8,), (32,), (1,), (1, 2),
             30 * M, 0.8, 5 * M, 4 * H, amplitude=0.7),
    Category("trading", 0.12, HIGH, GENERAL, (4,), (16,), (), (1, 2),
             3 * H, 0.5, 30 * M, 8 * H, peak_hour=11.0, amplitude=0.8),
    Category("telemedicine", 0.14, MEDIUM, GENERAL, (4,), (16,), (), (1,),
             20 * M, 0.7, 5 * M, 2 * H, amplitude=0.7),
)  # fmt: skip


def eligible_origins(
    category: Category, clusters: Sequence[FleetCluster], latency: LatencyModel
) -> list[tuple[str, float]]:
    """The origins with at least one cluster of the category's type inside its budget."""
    budget = LATENCY_BUDGET_MS[category.sensitivity]
    out = []
    for city, weight in ORIGINS:
        for c in clusters:
            if category.compute_type in c.compute_types and (
                budget is None or latency.rtt_ms(city, c.location) <= budget
            ):
                out.append((city, weight))
                break
    return out


def _arrival(rng: random.Random, span_s: float, peak: float, amplitude: float) -> float:
    """A time in [0, span) from the density ∝ 1 + A·cos(2π(h − peak)/24) (rejection)."""
    while True:
        t = rng.random() * span_s
        hour = (t / H) % 24
        if rng.random() * (1 + amplitude) <= 1 + amplitude * math.cos(
            2 * math.pi * (hour - peak) / 24
        ):
            return t


def synthetic_trace(
    count: int,
    clusters: Sequence[FleetCluster],
    latency: LatencyModel,
    *,
    seed: int = 0,
    days: float = 7.0,
) -> list[SimJob]:
    """``count`` jobs arriving over ``days`` days, sorted by arrival (ties by name)."""
    rng = random.Random(seed)
    origins = {c.name: eligible_origins(c, clusters, latency) for c in CATEGORIES}
    weights = [c.weight for c in CATEGORIES]
    span = days * DAY_S
    jobs = []
    for i in range(count):
        cat = rng.choices(CATEGORIES, weights=weights)[0]
        cities, city_w = zip(*origins[cat.name], strict=True)
        origin = rng.choices(cities, weights=city_w)[0]
        resources = {"cpu": float(rng.choice(cat.cpu)), "memory": rng.choice(cat.memory_gi) * GIB}
        if cat.gpu:
            resources[GPU] = float(rng.choice(cat.gpu))
        duration = rng.lognormvariate(math.log(cat.median_s), cat.sigma)
        duration = min(max(duration, cat.min_s), cat.max_s)
        request = JobRequest(
            name=f"{cat.name}-{i}",
            origin=origin,
            pod_resources=resources,
            parallelism=rng.choice(cat.parallelism),
            compute_type=cat.compute_type,
            sensitivity=cat.sensitivity,
        )
        arrival = _arrival(rng, span, cat.peak_hour, cat.amplitude)
        jobs.append(SimJob(request, round(arrival, 3), round(duration, 3), cat.name))
    jobs.sort(key=lambda j: (j.arrival_s, j.request.name))
    return jobs


# -- deadline windows (issue 9) --------------------------------------------------------------

#: Share of low- and medium-class jobs that declare a window (``spec.timing``), and the slack
#: a window leaves beyond the run, uniform in hours: "a few hours to a day". Estimated (our
#: assumption): batch work with a next-morning or end-of-day deadline, as in CarbonScaler's
#: and Google's carbon-intelligent computing's latency-tolerant workloads.
WINDOW_SHARE = 0.5
WINDOW_SLACK_H = (2.0, 24.0)


def with_windows(
    jobs: Sequence[SimJob],
    *,
    share: float = WINDOW_SHARE,
    slack_h: tuple[float, float] = WINDOW_SLACK_H,
    seed: int = 0,
) -> list[SimJob]:
    """The trace with ``share`` of its low and medium jobs given a deadline.

    ``deadline = arrival + duration + slack``; the job declares its exact run time as
    ``expectedDuration`` (the simulator's windowed jobs know how long they run). High-class
    jobs never get one. A separate seeded stream, so the jobs themselves are the same trace
    with or without windows.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"window share must be in [0, 1], got {share}")
    rng = random.Random(f"windows-{seed}")
    out = []
    for job in jobs:
        draw, slack = rng.random(), rng.uniform(*slack_h) * H
        if job.request.sensitivity is not HIGH and draw < share:
            job = SimJob(job.request, job.arrival_s, job.duration_s, job.category,
                         round(job.arrival_s + job.duration_s + slack, 3))  # fmt: skip
        out.append(job)
    return out


# -- input data (issue 10) ----------------------------------------------------------------

#: Share of low- and medium-class jobs that read a dataset, and its size: log-uniform from
#: 1 GiB to 2 TiB (each factor of ten equally likely). Estimated (our assumption): the data
#: sits in the origin city (East Data: where the users and their data are), and no public
#: trace gives input sizes per job. High-class jobs serve users where they are and read none.
DATA_SIZE_GIB = (1.0, 2048.0)


def with_data(
    jobs: Sequence[SimJob],
    network: NetworkModel,
    *,
    share: float,
    size_gib: tuple[float, float] = DATA_SIZE_GIB,
    seed: int = 0,
) -> list[SimJob]:
    """The trace with ``share`` of its low and medium jobs reading a dataset at their origin.

    The job declares its run time (what the simulator knows) so the score can weigh the
    transfer against the run; a windowed job's transfer may use the slack before its latest
    start. A separate seeded stream: the jobs are the same trace with or without data.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"data share must be in [0, 1], got {share}")
    rng = random.Random(f"data-{seed}")
    low, high = math.log(size_gib[0]), math.log(size_gib[1])
    out = []
    for job in jobs:
        draw, size = rng.random(), round(math.exp(rng.uniform(low, high)), 3)
        request = job.request
        if request.sensitivity is not HIGH and draw < share:
            latest = job.latest_start_s
            data = JobData(
                (DataInput(request.origin, size),),
                network,
                run_hours=job.duration_s / H,
                transfer_budget_s=None if latest is None else latest - job.arrival_s,
            )
            job = SimJob(replace(request, data=data), job.arrival_s, job.duration_s,
                         job.category, job.deadline_s)  # fmt: skip
        out.append(job)
    return out


# -- the Alibaba GPU trace v2023 (cluster-trace-gpu-v2023, openb_pod_list_*.csv) ------------

ALIBABA_COLUMNS = (
    "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos",
    "pod_phase", "creation_time", "deletion_time", "scheduled_time",
)  # fmt: skip
# The trace has no origin and no latency class: LS (latency-sensitive) pods get the medium
# class, everything else (BE, Burstable, Guaranteed) low; origins are drawn like the
# synthetic trace's. A pod asking for a share of a GPU (gpu_milli < 1000) gets a whole one.
QOS_CLASS = {"LS": MEDIUM}


class TraceError(ValueError):
    """A trace file the loader cannot read; the message names the file and the line."""


def load_alibaba_v2023(
    path: Path,
    clusters: Sequence[FleetCluster],
    latency: LatencyModel,
    *,
    limit: int | None = None,
    seed: int = 0,
) -> tuple[list[SimJob], int]:
    """Pods as one-pod jobs; (jobs sorted by arrival, rows skipped).

    Skipped: rows without a creation or deletion time or with deletion ≤ creation (never
    ran or still running at the trace's end), and pods larger than any node shape.
    """
    rng = random.Random(seed)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror}") from None
    rows: list[tuple[float, float, dict[str, str]]] = []
    skipped = 0
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("name", "cpu_milli", "memory_mib", "num_gpu", "creation_time",
                               "deletion_time") if c not in (reader.fieldnames or [])]  # fmt: skip
        if missing:
            raise TraceError(f"{path}: not an Alibaba v2023 pod list (no {', '.join(missing)})")
        for line, row in enumerate(reader, start=2):
            try:
                created = float(row["creation_time"]) if row["creation_time"] else None
                deleted = float(row["deletion_time"]) if row["deletion_time"] else None
                float(row["cpu_milli"]), float(row["memory_mib"]), float(row["num_gpu"] or 0)
            except ValueError:
                raise TraceError(f"{path}:{line}: a number field is not a number") from None
            if created is None or deleted is None or deleted <= created:
                skipped += 1
                continue
            started = float(row["scheduled_time"]) if row.get("scheduled_time") else created
            rows.append((created, max(deleted - max(started, created), 1.0), row))
    rows.sort(key=lambda r: (r[0], r[2]["name"]))
    if limit is not None:
        rows = rows[:limit]
    largest = _largest_nodes(clusters)
    cat = {
        GENERAL: Category("alibaba-cpu", 1, LOW, GENERAL, (), (), (), (), 0, 0, 0, 0),
        GPU_T: Category("alibaba-gpu", 1, LOW, GPU_T, (), (), (), (), 0, 0, 0, 0),
    }
    origin_lists = {
        (kind, s): eligible_origins(
            Category("", 1, s, kind, (), (), (), (), 0, 0, 0, 0), clusters, latency
        )
        for kind in cat
        for s in (LOW, MEDIUM)
    }
    t0 = rows[0][0] if rows else 0.0
    jobs = []
    for created, duration, row in rows:
        gpus = float(row["num_gpu"] or 0)
        if gpus == 0 and row.get("gpu_milli") and float(row["gpu_milli"]) > 0:
            gpus = 1.0
        kind = GPU_T if gpus > 0 else GENERAL
        resources = {
            "cpu": float(row["cpu_milli"]) / 1000.0,
            "memory": float(row["memory_mib"]) * 2**20,
        }
        if gpus:
            resources[GPU] = math.ceil(gpus)
        node = largest.get(kind)
        if node is None or any(resources.get(r, 0.0) > node.get(r, 0.0) for r in resources):
            skipped += 1
            continue
        sensitivity = QOS_CLASS.get(row.get("qos", ""), LOW)
        cities, weights = zip(*origin_lists[(kind, sensitivity)], strict=True)
        request = JobRequest(
            name=row["name"],
            origin=rng.choices(cities, weights=weights)[0],
            pod_resources=resources,
            parallelism=1,
            compute_type=kind,
            sensitivity=sensitivity,
        )
        jobs.append(SimJob(request, created - t0, duration, cat[kind].name))
    return jobs, skipped


def _largest_nodes(clusters: Iterable[FleetCluster]) -> dict[ComputeType, dict[str, float]]:
    out: dict[ComputeType, dict[str, float]] = {}
    for c in clusters:
        for n in c.nodes:
            alloc = n.allocatable()
            best = out.setdefault(n.compute_type, {})
            for r, v in alloc.items():
                best[r] = max(best.get(r, 0.0), v)
    return out


def write_alibaba_sample(path: Path, rows: Iterable[Sequence[object]]) -> None:
    """Write rows in the trace's column order (for tests and examples)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ALIBABA_COLUMNS)
        writer.writerows(rows)
