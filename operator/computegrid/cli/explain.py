"""``computegrid explain -f job.yaml``: where a job would go on a fleet, and why, per cluster.

A dry run of the same core the operator runs. ``-f`` takes a file (one or more YAML
documents) or a folder of them; ``--fleet`` the built-in national fleet or a fleet file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from computegrid.api.common import ANN_ORIGIN
from computegrid.api.compute_job import AnnotationError, ComputeJob, origin_city
from computegrid.api.quantities import format_quantity
from computegrid.api.timing import duration_seconds, parse_time
from computegrid.api.validation import first_error
from computegrid.cli.errors import UsageError
from computegrid.fleet_data import (
    UnknownCityError,
    load_latency_model,
    load_national_fleet,
    resolved_job_data,
)
from computegrid.fleet_data import resolve_city as resolve
from computegrid.fleet_data.fleet_file import load_fleet_clusters, load_fleet_file
from computegrid.fleet_data.inputs import InputError, read_documents
from computegrid.fleet_data.national import FleetCluster
from computegrid.fleet_data.power import MODEL_PROVINCES, builtin_forecast, contracted_green_share
from computegrid.scheduling import (
    ClusterSnapshot,
    Decision,
    FleetForecast,
    FleetState,
    JobError,
    Result,
    Scheduler,
    TimedDecision,
    TimeScheduler,
    placement_status,
    to_request,
    to_window,
)
from computegrid.scheduling.forecast import HOUR_S, rfc3339
from computegrid.scheduling.plugins.data_transfer import DataTransfer
from computegrid.scheduling.run_profile import AssumedRun
from computegrid.scheduling.timeshift import schedule_over_run

SHORT = {
    "CarbonIntensity": "CARBON",
    "RenewableShare": "RENEW",
    "PowerPrice": "PRICE",
    "LeastAllocated": "ROOM",
    "Latency": "NEAR",
    "HubPairing": "PAIR",
}
DATA_SHORT = {"DataTransfer": "DATA"}  # a column only for jobs that declare spec.data


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "explain", help="dry run: where a ComputeJob would go on a fleet and why"
    )
    parser.add_argument("-f", "--filename", required=True, type=Path, help="job YAML or a folder")
    parser.add_argument("--fleet", default="national", help="'national' or a fleet YAML file")
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    parser.add_argument(
        "--now",
        type=parse_now,
        default=None,
        help="RFC 3339 time to plan windowed jobs from (default: the current time)",
    )
    parser.add_argument(
        "--expected-run",
        type=parse_run,
        default=None,
        metavar="DURATION",
        help="for jobs without spec.timing: score the forecast over a run this long (6h, 90m), "
        "as the operator does once it has learned how long such work runs (default: the "
        "figures of now)",
    )
    parser.set_defaults(func=run)


def load_jobs(path: Path) -> list[tuple[str, ComputeJob]]:
    """(source, job) for every document; UsageError names the file and field at fault."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise UsageError(f"{path}: no .yaml files in this folder")
    else:
        files = [path]
    jobs = []
    for file in files:
        try:
            documents = read_documents(file)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for i, doc in enumerate(documents):
            source = f"{file}" if len(documents) == 1 else f"{file}[{i}]"
            jobs.append((source, parse_job(doc, source)))
    return jobs


def parse_job(doc: Any, source: str) -> ComputeJob:
    if not isinstance(doc, dict):
        raise UsageError(f"{source}: expected a ComputeJob object, got {type(doc).__name__}")
    kind = doc.get("kind")
    if kind != "ComputeJob":
        raise UsageError(f"{source}: kind: expected ComputeJob, got {kind!r}")
    try:
        return ComputeJob.model_validate(doc)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise UsageError(f"{source}: {where}: {message}") from None


def parse_run(text: str) -> AssumedRun:
    try:
        return AssumedRun(duration_seconds(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_now(text: str) -> dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def load_fleet(spec: str) -> list[ClusterSnapshot]:
    if spec == "national":
        return load_national_fleet().snapshots()
    try:
        return load_fleet_file(Path(spec))
    except InputError as exc:
        raise UsageError(str(exc)) from None


def load_fleet_power(spec: str) -> list[FleetCluster]:
    """The clusters with their provinces, for the Builtin forecast (none: flat)."""
    if spec == "national":
        return list(load_national_fleet().clusters)
    try:
        return load_fleet_clusters(Path(spec), MODEL_PROVINCES)
    except InputError as exc:
        raise UsageError(str(exc)) from None


def fleet_forecast(clusters: list[FleetCluster], now: dt.datetime) -> FleetForecast:
    """The Builtin source for every cluster (flat where the model has no province)."""
    ordered = sorted(clusters, key=lambda c: c.name)
    forecasts = [
        builtin_forecast(c.province, c.region, c.location, c.power, now, hours=48,
                         green_share=contracted_green_share(c))
        for c in ordered
    ]  # fmt: skip
    return FleetForecast.of(forecasts, now.timestamp(), hours=48)


def decide(
    source: str,
    job: ComputeJob,
    state: FleetState,
    scheduler: Scheduler,
    timed: tuple[TimeScheduler, FleetForecast, float] | None = None,
    assumed: AssumedRun | None = None,
) -> Result | TimedDecision:
    try:
        origin = resolve(origin_city(job)).key
    except AnnotationError as exc:
        raise UsageError(f"{source}: {exc}") from None
    except UnknownCityError as exc:
        raise UsageError(f"{source}: metadata.annotations[{ANN_ORIGIN}]: {exc}") from None
    try:
        data = resolved_job_data(job, now_s=timed[2] if timed is not None else None)
        request = to_request(job, origin, data=data)
        if job.spec.timing is not None and timed is not None:
            planner, forecast, now_s = timed
            return planner.plan(request, state, to_window(job, now_s), forecast)
        if assumed is None or timed is None:
            return scheduler.schedule(request, state)
        _, forecast, now_s = timed  # as the operator scores it once it knows such runs
        return schedule_over_run(scheduler, request, state, forecast, now_s, assumed)
    except JobError as exc:
        raise UsageError(f"{source}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    jobs = load_jobs(args.filename)
    snapshots = load_fleet(args.fleet)
    latency = load_latency_model()
    scheduler = Scheduler()
    timed = None
    if args.expected_run is not None or any(job.spec.timing is not None for _, job in jobs):
        now = args.now or dt.datetime.now(dt.UTC)
        power = load_fleet_power(args.fleet)
        timed = (TimeScheduler(), fleet_forecast(power, now), now.timestamp())
    reports = []
    for source, job in jobs:
        # Each job is judged on the fleet as it is now, not after the others: a dry run.
        state = FleetState(snapshots, latency)
        outcome = decide(source, job, state, scheduler, timed, args.expected_run)
        reports.append(report(source, job, outcome))
    if args.output == "json":
        print(
            json.dumps(reports[0] if len(reports) == 1 else reports, indent=2, ensure_ascii=False)
        )
    elif args.output == "yaml":
        print(yaml.safe_dump_all(reports, sort_keys=False, allow_unicode=True), end="")
    else:
        print("\n\n".join(render(r) for r in reports))
    return 0


def timing_report(timed: TimedDecision) -> dict[str, Any]:
    """The start time, its reasons and one row per candidate start (the best cluster then)."""
    window = timed.window
    return {
        "startAt": rfc3339(timed.start_s),
        "deferred": timed.deferred,
        "late": timed.late,
        "deadline": None if window.deadline_s is None else rfc3339(window.deadline_s),
        "expectedDurationHours": timed.duration_s / HOUR_S,
        "reasons": timed.reasons(),
        "carbonSavedG": round(timed.saved_g(), 1),
        "hours": [
            {**row, "startAt": rfc3339(float(str(row["start_s"])))} if "start_s" in row else row
            for row in timed.hour_by_hour()
        ],
    }


def as_decision(timed: TimedDecision) -> Decision:
    """The chosen cluster as a plain Decision, for status.placement's shape."""
    return Decision(timed.evaluation, timed.index, timed.score, 3)


def report(source: str, job: ComputeJob, outcome: Result | TimedDecision) -> dict[str, Any]:
    """One JSON-able object: the placement (status.placement's shape) and every cluster."""
    timing = None
    if isinstance(outcome, TimedDecision):
        timing = timing_report(outcome)
        result: Result = as_decision(outcome)
    else:
        result = outcome
    request = result.job
    verdicts = result.evaluation.verdicts()
    state = result.evaluation.state
    placement = None
    if isinstance(result, Decision):
        placement = placement_status(result).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
    gpu = state.resource_index.get("nvidia.com/gpu")
    cpu = state.resource_index["cpu"]
    _, free = state.cluster_totals()
    clusters = []
    transfer = DataTransfer()
    for i, v in enumerate(verdicts):
        chosen = isinstance(result, Decision) and result.index == i
        moves = transfer.explain(request, state, i) if request.data is not None else None
        clusters.append(
            {
                "cluster": v.cluster,
                "verdict": "chosen" if chosen else ("feasible" if v.feasible else "rejected"),
                "score": v.score,
                "breakdown": v.breakdown,
                "filter": v.filter,
                "reason": v.reason,
                "latencyMs": v.latency_ms,
                "carbonIntensity": v.carbon_intensity,
                "pricePerKWh": v.price_per_kwh,
                "freeCpu": format_quantity(float(free[i, cpu]), "cpu"),
                "freeGpu": format_quantity(float(free[i, gpu]), "gpu") if gpu is not None else "0",
                **({"transfer": moves} if moves is not None else {}),
            }
        )
    return {
        "source": source,
        "job": request.name,
        "origin": request.origin,
        "latencySensitivity": request.sensitivity.value,
        "latencyBudgetMs": request.latency_budget_ms,
        "computeType": request.compute_type.value,
        "phase": "Scheduled" if placement else "Pending",
        "placement": placement,
        "timing": timing,
        "diagnosis": None if placement else result.summary(),  # type: ignore[union-attr]
        "clusters": clusters,
        **({"dataGiB": request.data.total_gib} if request.data is not None else {}),
    }


def render(r: dict[str, Any]) -> str:
    budget = f"≤ {r['latencyBudgetMs']:g} ms" if r["latencyBudgetMs"] is not None else "any RTT"
    lines = [
        f"{r['job']}  ({r['source']}): {r['computeType']}, latency {r['latencySensitivity']} "
        f"({budget}) from {r['origin']}"
    ]
    p = r["placement"]
    if p:
        lines.append(
            f"→ {p['cluster']} ({p['hub']}, {p['region']})  score {p['score']:.1f}  "
            f"RTT {p['latencyMs']:.1f} ms  {p['carbonIntensity']:g} gCO2e/kWh  "
            f"{p['pricePerKWh']:g} CNY/kWh"
        )
        if p.get("nearestCluster") and p["nearestCluster"] != p["cluster"]:
            lines.append(
                f"  vs nearest {p['nearestCluster']}: saves {p['carbonSavedGPerHour']:.0f} gCO2e/h "
                f"and {p['costSavedCnyPerHour']:.2f} CNY/h"
            )
    else:
        lines.append(f"→ Pending: {r['diagnosis']}")
    if r.get("timing"):
        lines.extend(render_timing(r["timing"]))
    short = {**SHORT, **DATA_SHORT} if "dataGiB" in r else SHORT
    if "dataGiB" in r:
        chosen = [c for c in r["clusters"] if c["verdict"] == "chosen"]
        lines.extend(f"  data: {c['transfer']}" for c in chosen)
    names = list(short)
    header = f"  {'CLUSTER':<28} {'VERDICT':<8} {'SCORE':>5} " + " ".join(
        f"{short[n]:>6}" for n in names
    )
    lines.append(header + f" {'RTT':>5} {'gCO2':>5} {'CNY':>5} {'CPU':>5} {'GPU':>4}  REASON")
    for c in r["clusters"]:
        parts = " ".join(
            f"{c['breakdown'][n]:>6.0f}" if n in c["breakdown"] else f"{'-':>6}" for n in names
        )
        score = f"{c['score']:>5.1f}" if c["score"] is not None else f"{'-':>5}"
        reason = f"{c['filter']}: {c['reason']}" if c["filter"] else ""
        lines.append(
            f"  {c['cluster']:<28} {c['verdict']:<8} {score} {parts} "
            f"{_cell(c['latencyMs'], 5, '.1f')} {_cell(c['carbonIntensity'], 5, '.0f')} "
            f"{_cell(c['pricePerKWh'], 5, '.2f')} {_cell(c['freeCpu'], 5)} "
            f"{_cell(c['freeGpu'], 4)}  {reason}"
        )
    return "\n".join(lines)


def render_timing(t: dict[str, Any]) -> list[str]:
    """The start time and the hour-by-hour comparison (times in Beijing, UTC+8)."""
    lines = [f"  {reason}" for reason in t["reasons"]]
    lines.append(
        f"  window: {t['expectedDurationHours']:g} h run, due {t['deadline']}; "
        "each candidate start, its best cluster, mean power over the run (Builtin forecast):"
    )
    lines.append(
        f"    {'START':<11} {'BEST CLUSTER':<28} {'SCORE':>5} {'gCO2/kWh':>8} {'CNY/kWh':>7} "
        f"{'gCO2e':>7}"
    )
    for row in t["hours"]:
        if row.get("cluster") is None:
            lines.append(f"    {row['start']:<11} (no cluster has room)")
            continue
        mark = "  <- chosen" if row["chosen"] else ""
        lines.append(
            f"    {row['start']:<11} {row['cluster']:<28} {row['score']:>5.1f} "
            f"{row['carbon']:>8.0f} {row['price']:>7.3f} {row['gco2e']:>7}{mark}"
        )
    return lines


def _cell(value: Any, width: int, spec: str = "") -> str:
    """A right-aligned cell; "-" where the figure is unknown (``kubectl computegrid why``
    knows a runner-up's score, not its RTT or power)."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"
