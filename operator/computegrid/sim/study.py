"""One study: every policy on the same traces, seed after seed, plus the lower bound.

Per seed: a trace (synthetic with that seed, or the file with origins drawn by that seed),
one fresh FleetState per policy, the same power curves, the bound (the LP relaxation, or with
``bound_integral`` the mixed-integer bound that places chosen jobs whole); then per policy the
mean and 95 % CI over seeds of each metric, the ratio to the bound, the captured savings and
the targets of issue 6.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from computegrid.api.common import GPU
from computegrid.fleet_data import (
    FleetCluster,
    load_latency_model,
    load_national_fleet,
    load_network_model,
)
from computegrid.fleet_data.power import CLEAN_SPLIT, PowerCurves, build_curves
from computegrid.scheduling import DEFAULT_POLICY, FleetState, Policy
from computegrid.scheduling.capacity_price import CapacityPrices
from computegrid.sim.bound import Bound, LpPlan, lower_bound
from computegrid.sim.engine import Replay, replay
from computegrid.sim.metrics import (
    JobArrays,
    captured_savings,
    curve_hours,
    mean_ci,
    policy_metrics,
)
from computegrid.sim.placers import NEEDS_LP_PLAN, POLICY_NAMES, make_placer
from computegrid.sim.trace import (
    WINDOW_SHARE,
    SimJob,
    load_alibaba_v2023,
    synthetic_trace,
    with_data,
    with_windows,
)

SCALAR_KEYS = (
    "carbon_t", "carbon_market_t", "cost_cny", "energy_mwh", "latency_violations",
    "deadline_misses", "windowed_jobs", "deferred_jobs", "failed_starts", "max_failed_starts",
    "waited_for_room", "left_at_latest_start", "mean_windowed_wait_h", "mean_rtt_ms",
    "overcommits", "unplaced", "jobs_waited", "mean_wait_s", "p95_wait_s",
    "east_to_west_share", "ratio_to_bound", "captured_savings", "savings_vs_nearest",
    "ratio_to_lp_bound", "captured_savings_lp",
)  # fmt: skip
# Moving input data (issue 10, ``--data-share``): present only when the trace has data.
DATA_KEYS = (
    "data_jobs", "data_jobs_moved", "transfer_carbon_t", "transfer_cny", "transfer_tib",
    "mean_transfer_min",
)  # fmt: skip


@dataclass
class StudyConfig:
    jobs: int = 20_000
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    trace: str = "synthetic"  # or a path to an Alibaba v2023 pod list
    days: float = 7.0
    scale: int | None = None  # node inventory repeats per cluster; None: from target_util
    target_util: float = 0.5
    policies: Sequence[str] = POLICY_NAMES
    policy: Policy = field(default_factory=lambda: DEFAULT_POLICY)
    start: dt.datetime = dt.datetime(2023, 4, 3)
    scenario: str = "base"
    bound: bool = True
    clusters: Sequence[FleetCluster] | None = None
    window_share: float = WINDOW_SHARE  # low/medium jobs with a deadline window (issue 9)
    data_share: float = 0.0  # low/medium jobs reading a dataset at their origin (issue 10)
    prices: CapacityPrices | None = None  # for computegrid-priced (sim/prices.py)
    bound_time_limit_s: float = 300.0  # HiGHS' limit per LP (a shared machine needs more)
    bound_integral: str = "none"  # jobs placed whole in the bound: none (the LP), gpu, all
    bound_milp_time_limit_s: float = 600.0  # HiGHS' limit per MILP; its dual bound counts
    bound_instant_rounds: int = 0  # rounds of capacity rows at overfilled instants (0: none)


@dataclass
class SeedRun:
    seed: int
    jobs: list[SimJob]
    arrays: JobArrays
    scale: int
    replays: dict[str, Replay]
    metrics: dict[str, dict[str, Any]]
    bound: Bound | None
    state: FleetState  # an idle state of the run's fleet (names, capacities)
    wall_s: dict[str, float]
    # per policy: a placer's own counts (``diagnostics()``), e.g. lp-plan-replay's fallbacks
    diagnostics: dict[str, dict[str, int]] = field(default_factory=dict)


def auto_scale(jobs: Sequence[SimJob], clusters: Sequence[FleetCluster], target: float) -> int:
    """Node repeats so the busiest pool (CPU or GPU per compute type) averages ``target``.

    Offered load of a pool = Σ request × pods × run time / trace span; one repeat of the
    fleet holds Σ node capacity. 1,205 GPUs busy on average / (0.5 × 176 GPUs) → 14.
    """
    if not jobs:
        return 1
    span = max(max(j.arrival_s for j in jobs), 3600.0)
    load: dict[tuple[str, str], float] = {}
    cap: dict[tuple[str, str], float] = {}
    for j in jobs:
        r = j.request
        for res in ("cpu", GPU):
            amount = r.pod_resources.get(res, 0.0) * r.parallelism * j.duration_s / span
            key = (r.compute_type.value, res)
            load[key] = load.get(key, 0.0) + amount
    for c in clusters:
        for n in c.nodes:
            for res, amount in (("cpu", n.cpu), (GPU, n.gpu)):
                key = (n.compute_type.value, res)
                cap[key] = cap.get(key, 0.0) + amount
    need = max((v / (target * cap[k]) for k, v in load.items() if v > 0 and cap.get(k)),
               default=1.0)  # fmt: skip
    return max(1, math.ceil(need))


def load_trace(cfg: StudyConfig, seed: int, clusters: Sequence[FleetCluster]) -> list[SimJob]:
    latency = load_latency_model()
    if cfg.trace == "synthetic":
        jobs = synthetic_trace(cfg.jobs, clusters, latency, seed=seed, days=cfg.days)
    else:
        jobs, _ = load_alibaba_v2023(Path(cfg.trace), clusters, latency, limit=cfg.jobs, seed=seed)
    if cfg.window_share:
        jobs = with_windows(jobs, share=cfg.window_share, seed=seed)
    if cfg.data_share:
        jobs = with_data(jobs, load_network_model(), share=cfg.data_share, seed=seed)
    return jobs


def run_seed(cfg: StudyConfig, seed: int, log: Callable[[str], None] | None = None) -> SeedRun:
    clusters = _clusters(cfg)
    latency = load_latency_model()
    curves = build_curves(clusters, start=cfg.start, scenario=cfg.scenario)
    jobs = load_trace(cfg, seed, clusters)
    arrays = JobArrays.of(jobs)
    scale = cfg.scale or auto_scale(jobs, clusters, cfg.target_util)
    snapshots = [c.snapshot(scale) for c in clusters]
    replays: dict[str, Replay] = {}
    wall: dict[str, float] = {}
    diagnostics: dict[str, dict[str, int]] = {}
    idle = FleetState(snapshots, latency)
    bound = None
    needs_plan = any(name in NEEDS_LP_PLAN for name in cfg.policies)
    if needs_plan and not cfg.bound:
        raise ValueError(f"{', '.join(NEEDS_LP_PLAN)} replays the bound's plan: drop --no-bound")

    def solve_bound() -> Bound:
        # The window only has to cover the bound's own columns (arrival or deadline), so
        # solving before the replays (for a policy that replays its plan) gives the same LP.
        hours = curve_hours(arrays, list(replays.values()))
        t0 = time.perf_counter()
        solved = lower_bound(jobs, arrays, idle, curves.window(hours),
                             time_limit_s=cfg.bound_time_limit_s, integral=cfg.bound_integral,
                             milp_time_limit_s=cfg.bound_milp_time_limit_s,
                             instant_rounds=cfg.bound_instant_rounds,
                             rounded_plan="lp-plan-replay-rounded" in cfg.policies)  # fmt: skip
        wall["bound"] = time.perf_counter() - t0
        if log:
            log(f"seed {seed}: bound {wall['bound']:.1f} s ({solved.variables} variables), "
                f"LP {solved.lp_carbon_t:.4f} t")  # fmt: skip
            if solved.instants is not None:
                ins = solved.instants
                log(f"seed {seed}: capacity at instants {ins.carbon_t:.4f} t, {ins.rounds} "
                    f"re-solves, {ins.rows} rows, {ins.violated_left} instants still "
                    f"overfilled, {ins.solve_s:.1f} s, {ins.status}")  # fmt: skip
            if solved.mixed is not None:
                mx = solved.mixed
                log(f"seed {seed}: {solved.method} dual bound {mx.dual_bound_t:.4f} t, "
                    f"incumbent {mx.incumbent_t} ({mx.incumbent_from}), gap {mx.gap}, "
                    f"{mx.solve_s:.1f} s, {mx.status}")  # fmt: skip
        return solved

    if needs_plan:  # one solve serves both the bound and the replay of its plan
        bound = solve_bound()
    for name in cfg.policies:
        t0 = time.perf_counter()
        state = FleetState(snapshots, latency)
        placer = make_placer(name, seed=seed, policy=cfg.policy, curves=curves,
                             prices=cfg.prices,
                             lp_plan=_plan_for(name, bound))  # fmt: skip
        replays[name] = replay(jobs, state, placer, curves)
        wall[name] = time.perf_counter() - t0
        counts = getattr(placer, "diagnostics", None)
        if callable(counts):
            diagnostics[name] = counts()
        if log:
            log(f"seed {seed}: {name} {wall[name]:.1f} s")
            report = getattr(placer, "report", None)
            if callable(report):
                log(f"seed {seed}: {report()}")
    metrics = {name: policy_metrics(r, arrays, idle, curves) for name, r in replays.items()}
    if cfg.bound and bound is None:
        bound = solve_bound()
    for m in metrics.values():
        nearest = metrics["nearest"]["carbon_t"] if "nearest" in metrics else math.nan
        m["savings_vs_nearest"] = (nearest - m["carbon_t"]) / nearest if nearest else math.nan
        # With slack the bound is approximate (some job could not start on arrival anywhere,
        # while the policies queued it): no ratio is reported against it.
        if bound is not None and bound.slack_jobs == 0:
            m["ratio_to_bound"] = m["carbon_t"] / bound.carbon_t
            m["captured_savings"] = captured_savings(nearest, m["carbon_t"], bound.carbon_t)
            if bound.beside_lp:
                m["ratio_to_lp_bound"] = m["carbon_t"] / bound.lp_carbon_t
                m["captured_savings_lp"] = captured_savings(
                    nearest, m["carbon_t"], bound.lp_carbon_t
                )
        else:
            m["ratio_to_bound"] = m["captured_savings"] = math.nan
            if bound is not None and bound.beside_lp:
                m["ratio_to_lp_bound"] = m["captured_savings_lp"] = math.nan
    return SeedRun(seed, jobs, arrays, scale, replays, metrics, bound, idle, wall, diagnostics)


def _plan_for(policy: str, bound: Bound | None) -> LpPlan | None:
    """The bound's plan a replay of it follows (None for every other policy)."""
    if bound is None or policy not in NEEDS_LP_PLAN:
        return None
    return bound.rounded_plan if policy == "lp-plan-replay-rounded" else bound.plan


def run_study(
    cfg: StudyConfig, log: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], list[SeedRun]]:
    runs = [run_seed(cfg, seed, log) for seed in cfg.seeds]
    return summarise(cfg, runs), runs


def summarise(cfg: StudyConfig, runs: Sequence[SeedRun]) -> dict[str, Any]:
    """The JSON of ``computegrid sim --json``: means, plus CIs and detail alongside."""
    policies: dict[str, Any] = {}
    for name in cfg.policies:
        entry: dict[str, Any] = {}
        ci: dict[str, float] = {}
        for key in (*SCALAR_KEYS, *DATA_KEYS):
            if key not in runs[0].metrics[name]:  # data keys: only for a trace with data
                continue
            values = [r.metrics[name][key] for r in runs]
            if all(isinstance(v, float) and math.isnan(v) for v in values):
                continue
            mean, half = mean_ci(values)
            entry[key] = _round(mean)
            ci[key] = _round(half)
        entry["ci95"] = ci
        entry["per_seed"] = {
            key: [_round(float(r.metrics[name][key])) for r in runs]
            for key in ("carbon_t", "cost_cny", "deadline_misses", "ratio_to_bound",
                        "captured_savings", "ratio_to_lp_bound", "captured_savings_lp")
            if key in runs[0].metrics[name]
        }  # fmt: skip
        entry["per_class"] = {
            cls: {
                k: _round(float(np.mean([r.metrics[name]["per_class"][cls][k] for r in runs])))
                for k in ("jobs", "carbon_t", "latency_violations", "mean_wait_s")
            }
            for cls in runs[0].metrics[name]["per_class"]
        }
        entry["utilisation"] = {
            c: {
                res: (None if v is None else _round(float(np.mean(
                    [r.metrics[name]["utilisation"][c][res] for r in runs]))))
                for res, v in runs[0].metrics[name]["utilisation"][c].items()
            }
            for c in runs[0].metrics[name]["utilisation"]
        }  # fmt: skip
        policies[name] = entry
    out: dict[str, Any] = {"policies": policies}
    if "computegrid" in cfg.policies and "computegrid-timed" in cfg.policies:
        out["time_shift"] = time_shift_savings(runs)
    if "computegrid" in cfg.policies:  # every time-aware variant against start-now
        out["vs_start_now"] = {
            name: time_shift_savings(runs, name)
            for name in cfg.policies
            if name.startswith("computegrid-")
        }
    counted = sorted({name for r in runs for name in r.diagnostics})
    if counted:  # per policy, per count: one value per seed
        out["diagnostics"] = {
            name: {k: [r.diagnostics.get(name, {}).get(k) for r in runs]
                   for k in runs[0].diagnostics.get(name, {})}
            for name in counted
        }  # fmt: skip
    bounds = [r.bound for r in runs if r.bound is not None]
    if bounds:
        out["lower_bound"] = bound_summary(bounds)
    out["targets"] = targets(out)
    out["study"] = {
        "jobs": len(runs[0].jobs) if runs else 0,
        "seeds": list(cfg.seeds),
        "trace": cfg.trace,
        "fleet": "national" if cfg.clusters is None else "file",
        # Hourly curves: the model for a province it covers (scaled to the cluster's annual
        # figures), else flat at the cluster's own figures (fleet_data/power.py).
        "province_curves": {
            c.name: c.province
            for c in sorted(_clusters(cfg), key=lambda c: c.name)
            if c.province in CLEAN_SPLIT
        },
        "flat_curve_clusters": sorted(
            c.name for c in _clusters(cfg) if c.province not in CLEAN_SPLIT
        ),
        "scale": sorted({r.scale for r in runs}),
        "days": cfg.days,
        "start": cfg.start.isoformat(),
        "scenario": cfg.scenario,
        "carbon_accounting": "location-based (grid) unless *_market_*; all curves estimated; "
        "market-based nets out only a cluster's own reported contracted green share",
    }
    return out


def bound_summary(bounds: Sequence[Bound]) -> dict[str, Any]:
    """The bound's figures: which bound the ratios use, and whether it is proved."""
    mean, half = mean_ci([b.carbon_t for b in bounds])
    lp_mean, lp_half = mean_ci([b.lp_carbon_t for b in bounds])
    out: dict[str, Any] = {
        "carbon_t": _round(mean),
        "ci95": {"carbon_t": _round(half), "lp_carbon_t": _round(lp_half)},
        "method": bounds[0].method,
        "ratios_against": "carbon_t: "
        + ("the LP relaxation" if bounds[0].mixed is None else
           "the larger of the LP and the MILP's dual bound (jobs placed whole: "
           f"{bounds[0].mixed.integral}); ratio_to_lp_bound against the LP")
        + ("" if bounds[0].instants is None else
           "; or, if larger, the LP with capacity held at the instants it overfilled"),
        # proved: no slack anywhere, so every schedule of the offered starts is ≥ the bound
        "proved": all(b.proved for b in bounds),
        "lp_carbon_t": _round(lp_mean),
        "variables": int(np.mean([b.variables for b in bounds])),
        "constraints": int(np.mean([b.constraints for b in bounds])),
        "bucket_hours": bounds[0].bucket_hours,
        "slack_jobs": int(sum(b.slack_jobs for b in bounds)),
        "per_seed": [_round(b.carbon_t) for b in bounds],
        "lp_per_seed": [_round(b.lp_carbon_t) for b in bounds],
        "solve_s": [round(b.solve_s, 1) for b in bounds],
    }  # fmt: skip
    instants = [b.instants for b in bounds if b.instants is not None]
    if instants:
        out["instants"] = {
            "carbon_t": [_round(i.carbon_t) for i in instants],
            "rounds": [i.rounds for i in instants],
            "rows": [i.rows for i in instants],
            "violated_left": [i.violated_left for i in instants],
            "solve_s": [round(i.solve_s, 1) for i in instants],
            "status": [i.status for i in instants],
        }
    mixed = [b.mixed for b in bounds if b.mixed is not None]
    if mixed:
        out["milp"] = {
            "integral": mixed[0].integral,
            "integral_jobs": [m.integral_jobs for m in mixed],
            "block_jobs": [m.block_jobs for m in mixed],
            "variables": [m.variables for m in mixed],
            "dual_bound_t": [_round(m.dual_bound_t) for m in mixed],
            "incumbent_t": [None if m.incumbent_t is None else _round(m.incumbent_t)
                            for m in mixed],
            "incumbent_from": [m.incumbent_from for m in mixed],
            "gap": [None if m.gap is None else _round(m.gap) for m in mixed],
            "solve_s": [round(m.solve_s, 1) for m in mixed],
            "status": [m.status for m in mixed],
        }  # fmt: skip
    return out


def time_shift_savings(
    runs: Sequence[SeedRun], policy: str = "computegrid-timed"
) -> dict[str, Any]:
    """What a time-aware policy saves against start-now computegrid: paired per seed (the
    same trace), mean and 95 % t-interval of the difference, in absolute and relative terms."""
    out: dict[str, Any] = {}
    for key in ("carbon_t", "carbon_market_t", "cost_cny"):
        now = np.array([r.metrics["computegrid"][key] for r in runs])
        timed = np.array([r.metrics[policy][key] for r in runs])
        saved, half = mean_ci(list(now - timed))
        share, share_half = mean_ci(list((now - timed) / now))
        out[key] = {
            "saved": _round(saved),
            "ci95": _round(half),
            "saved_share": _round(share),
            "saved_share_ci95": _round(share_half),
        }
    return out


def curve_notes(study: dict[str, Any]) -> list[str]:
    """Which clusters' power curves are the hourly model and which are flat (a file's fleet)."""
    if study.get("fleet") != "file":
        return []
    modelled = study.get("province_curves", {})
    flat = study.get("flat_curve_clusters", [])
    lines = []
    if modelled:
        lines.append("hourly power model: " + ", ".join(f"{c} ({p})" for c, p in modelled.items()))
    if flat:
        lines.append(f"flat power curves (no province the model covers): {', '.join(flat)}")
    return lines


def targets(out: dict[str, Any]) -> dict[str, Any]:
    """Issue 6's targets for computegrid, each with the measured value and met or not."""
    p = out["policies"]
    if "computegrid" not in p:
        return {}
    cg = p["computegrid"]
    result: dict[str, Any] = {
        "zero_latency_violations": {"value": cg["latency_violations"],
                                    "met": cg["latency_violations"] == 0},
        "zero_overcommits": {"value": cg["overcommits"], "met": cg["overcommits"] == 0},
    }  # fmt: skip
    if "ratio_to_bound" in cg:
        result["carbon_within_5pct_of_bound"] = {
            "value": cg["ratio_to_bound"],
            "met": cg["ratio_to_bound"] <= 1.05,
        }
        result["captured_savings_at_least_0.9"] = {
            "value": cg["captured_savings"],
            "met": cg["captured_savings"] >= 0.9,
        }
    if "always-west" in p:
        result["better_than_always_west"] = {
            "value": _round(cg["carbon_t"] - p["always-west"]["carbon_t"]),
            "met": cg["carbon_t"] < p["always-west"]["carbon_t"],
        }
    if "least-loaded" in p:
        ll = p["least-loaded"]["mean_wait_s"]
        result["mean_wait_within_5pct_of_least_loaded"] = {
            "value": cg["mean_wait_s"],
            "least_loaded": ll,
            "met": cg["mean_wait_s"] <= 1.05 * ll + 1e-9,
        }
    return result


def _round(value: float) -> float:
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.6g}")


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _clusters(cfg: StudyConfig) -> list[FleetCluster]:
    """The study's fleet: the file's clusters, else the built-in national fleet."""
    return list(cfg.clusters or load_national_fleet().clusters)


def curves_for(cfg: StudyConfig) -> PowerCurves:
    return build_curves(_clusters(cfg), start=cfg.start, scenario=cfg.scenario)
