"""The study as Markdown with PNG plots (matplotlib, Agg backend: no display needed).

Plots: carbon by policy with 95 % CIs and the bound; where computegrid and nearest put the
work on a map; the hourly carbon curves of the first seed's week with where computegrid's
work ran each hour; carbon against mean RTT per policy (the Pareto view).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from computegrid.fleet_data import FleetCluster, load_cities, load_national_fleet
from computegrid.scheduling.energy import PUE
from computegrid.sim.china_map import CMAP, draw_outlines, place_labels
from computegrid.sim.metrics import curve_hours
from computegrid.sim.study import SeedRun, StudyConfig, curve_notes, curves_for
from computegrid.sim.trace import ORIGINS

TARGET_TEXT = {
    "zero_latency_violations": "0 latency-budget violations",
    "zero_overcommits": "0 capacity overcommits",
    "carbon_within_5pct_of_bound": "carbon ≤ 1.05 × the bound",
    "captured_savings_at_least_0.9": "captured savings ≥ 0.9",
    "better_than_always_west": "carbon strictly below always-west (t difference)",
    "mean_wait_within_5pct_of_least_loaded": "mean queue wait ≤ 1.05 × least-loaded (s)",
}


def write_report(
    out: Path, cfg: StudyConfig, summary: dict[str, Any], runs: Sequence[SeedRun]
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plot_carbon(out / "carbon_by_policy.png", summary)
    plot_map(out / "placement_map.png", summary, cfg.clusters or load_national_fleet().clusters)
    plot_hourly(out / "hourly_carbon.png", cfg, runs[0])
    plot_pareto(out / "pareto.png", summary)
    path = out / "report.md"
    path.write_text(markdown(summary), encoding="utf-8")
    return path


def markdown(summary: dict[str, Any]) -> str:
    study = summary["study"]
    lb = summary.get("lower_bound", {})
    lines = [
        "# computegrid sim: placement quality on "
        + ("the national fleet" if study["fleet"] == "national" else "a fleet file"),
        "",
        f"{study['jobs']} jobs per seed, seeds {study['seeds']}, trace `{study['trace']}`, "
        f"fleet `{study['fleet']}` × {study['scale']} node repeats, start {study['start']}, "
        f"scenario `{study['scenario']}`. Means over seeds with 95 % t-intervals. Carbon is "
        "location-based unless marked market; every power figure is `estimated` "
        "(see docs/sim.md).",
        *(f"\n{note}." for note in curve_notes(study)),
        "",
        "| policy | tCO2e (loc.) | ±95 % | tCO2e (market) | CNY | violations | overcommits "
        "| mean wait s | p95 wait s | mean RTT ms | east→west | vs nearest | ÷ bound "
        "| captured |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in summary["policies"].items():
        lines.append(
            f"| {name} | {m['carbon_t']:.2f} | {m['ci95']['carbon_t']:.2f} "
            f"| {m['carbon_market_t']:.2f} | {m['cost_cny']:,.0f} | {m['latency_violations']:g} "
            f"| {m['overcommits']:g} | {m['mean_wait_s']:.2f} | {m['p95_wait_s']:.2f} "
            f"| {m['mean_rtt_ms']:.1f} | {m['east_to_west_share']:.0%} "
            f"| {m['savings_vs_nearest']:+.1%} | {m.get('ratio_to_bound', float('nan')):.3f} "
            f"| {m.get('captured_savings', float('nan')):.3f} |"
        )
    if lb:
        lines += [
            f"| **lower bound ({lb['method']})** | {lb['carbon_t']:.2f} "
            f"| {lb['ci95']['carbon_t']:.2f} | | | | | | | | | | 1.000 | 1.000 |",
            "",
            f"Bound: {lb['method']}, {lb['variables']:,} variables, {lb['constraints']:,} "
            f"rows, {lb['bucket_hours']:g} h buckets, {lb['slack_jobs']} job-seeds needing "
            "slack (capacity made an on-arrival start impossible); "
            + ("a true lower bound." if lb.get("proved") else "approximate."),
        ]
        if "milp" in lb:
            mx = lb["milp"]
            lines += [
                "",
                f"Ratios against the larger of the LP ({lb['lp_carbon_t']:.3f} t on average) "
                f"and the MILP's dual bound, jobs placed whole: {mx['integral']}. Per seed: "
                "dual bound " + ", ".join(f"{v:.3f}" for v in mx["dual_bound_t"]) + " t; "
                "incumbent " + ", ".join("-" if v is None else f"{v:.3f}"
                                         for v in mx["incumbent_t"]) + " t; "
                "gap " + ", ".join("-" if v is None else f"{v:.2%}" for v in mx["gap"]) + "; "
                "solve " + ", ".join(f"{v:g}" for v in mx["solve_s"]) + " s.",
            ]  # fmt: skip
        if "instants" in lb:
            ins = lb["instants"]
            lines += [
                "",
                f"Capacity also held at the instants the LP ({lb['lp_carbon_t']:.3f} t on "
                "average, hourly averages) overfilled a pool (row generation). Per seed: "
                + ", ".join(f"{v:.3f}" for v in ins["carbon_t"]) + " t; rows "
                + ", ".join(f"{v:,}" for v in ins["rows"]) + "; instants still overfilled "
                + ", ".join(str(v) for v in ins["violated_left"]) + "; solve "
                + ", ".join(f"{v:g}" for v in ins["solve_s"]) + " s.",
            ]  # fmt: skip
    lines += ["", "## Targets (computegrid)", "", "| target | measured | met |", "|---|---:|---|"]
    for key, t in summary.get("targets", {}).items():
        extra = f" (least-loaded {t['least_loaded']:g})" if "least_loaded" in t else ""
        lines.append(f"| {TARGET_TEXT.get(key, key)} | {t['value']:g}{extra} "
                     f"| {'yes' if t['met'] else '**no**'} |")  # fmt: skip
    lines += ["", "## Per latency class (computegrid)", ""]
    lines += ["| class | jobs | tCO2e | violations | mean wait s |", "|---|---:|---:|---:|---:|"]
    for cls, m in summary["policies"].get("computegrid", {}).get("per_class", {}).items():
        lines.append(f"| {cls} | {m['jobs']:g} | {m['carbon_t']:.2f} | "
                     f"{m['latency_violations']:g} | {m['mean_wait_s']:.2f} |")  # fmt: skip
    lines += ["", "## Utilisation per cluster (CPU / GPU, share of capacity over the trace)", ""]
    names = list(summary["policies"])
    lines.append("| cluster | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    clusters = list(next(iter(summary["policies"].values()))["utilisation"])
    for c in clusters:
        cells = []
        for n in names:
            u = summary["policies"][n]["utilisation"][c]
            cells.append(" / ".join("–" if u[r] is None else f"{u[r]:.0%}" for r in ("cpu", "gpu")))
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![carbon by policy](carbon_by_policy.png)",
        "![placement map](placement_map.png)",
        "![hourly carbon](hourly_carbon.png)",
        "![pareto](pareto.png)",
        "",
    ]
    return "\n".join(lines)


def plot_carbon(path: Path, summary: dict[str, Any]) -> None:
    names = list(summary["policies"])
    mean = [summary["policies"][n]["carbon_t"] for n in names]
    err = [summary["policies"][n]["ci95"]["carbon_t"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["tab:green" if n == "computegrid" else "tab:gray" for n in names]
    ax.bar(names, mean, yerr=err, capsize=4, color=colors)
    if "lower_bound" in summary:
        ax.axhline(summary["lower_bound"]["carbon_t"], color="tab:red", ls="--", label="bound")
        ax.legend()
    ax.set_ylabel("tCO2e per trace (location-based, estimated)")
    ax.set_title("Carbon by policy, mean and 95 % CI over seeds")
    ax.tick_params(axis="x", rotation=30)
    low = min(mean) * 0.8
    ax.set_ylim(bottom=low)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_map(path: Path, summary: dict[str, Any], clusters: Sequence[FleetCluster]) -> None:
    """Each policy's busiest-pool utilisation per cluster (marker size) on the province map,
    clusters coloured by carbon intensity, the main job origins in blue by weight."""
    cities = load_cities()
    shown = [n for n in ("nearest", "computegrid") if n in summary["policies"]]
    fig, axes = plt.subplots(1, len(shown), figsize=(7.5 * len(shown), 5.5), squeeze=False)
    norm = Normalize(vmin=0, vmax=max([800.0, *(c.power.carbon_intensity for c in clusters)]))
    points = None
    for ax, name in zip(axes[0], shown, strict=True):
        draw_outlines(ax)
        util = summary["policies"][name]["utilisation"]
        for o, w in ORIGINS:
            c = cities[o]
            ax.scatter(c.lon, c.lat, s=w * 6, color="tab:blue", alpha=0.3, zorder=2)
        spots = [cities[cl.location] for cl in clusters]
        shares = [max(v for v in (util[cl.name]["cpu"], util[cl.name]["gpu"]) if v is not None)
                  for cl in clusters]  # fmt: skip
        points = ax.scatter([c.lon for c in spots], [c.lat for c in spots],
                            s=[30 + 900 * s for s in shares],
                            c=[cl.power.carbon_intensity for cl in clusters], cmap=CMAP,
                            norm=norm, alpha=0.8, edgecolor="k", zorder=3)  # fmt: skip
        fig.canvas.draw()
        labels = [
            (f"{cl.name.split('-')[-1]} {s:.0%}", c.lon, c.lat, {"fontsize": 7})
            for cl, c, s in zip(clusters, spots, shares, strict=True)
        ]
        place_labels(ax, labels, [])
        ax.set_title(f"{name}: busiest-pool utilisation (size)")
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    if points is not None:
        fig.colorbar(points, ax=list(axes[0]), shrink=0.7, label="carbon intensity (gCO2e/kWh)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_hourly(path: Path, cfg: StudyConfig, run: SeedRun) -> None:
    curves = curves_for(cfg)
    hours = min(curve_hours(run.arrays), int(cfg.days * 24) + 24)
    window = curves.window(hours)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for i, name in enumerate(curves.names):
        ax1.plot(np.arange(hours), window["carbon"][:, i], lw=1, label=name)
    ax1.set_ylabel("gCO2/kWh (location, estimated)")
    ax1.legend(fontsize=6, ncol=2)
    ax1.set_title(f"Hourly grid carbon intensity from {cfg.start:%Y-%m-%d} (seed {run.seed})")
    rep = run.replays.get("computegrid")
    if rep is not None:
        pue = np.array([PUE[c.region] for c in run.state.clusters])
        kw = np.zeros((hours, run.state.size))
        for j in np.flatnonzero(rep.placed):
            c = rep.cluster[j]
            h0 = int(rep.start_s[j] // 3600)
            h1 = min(int(rep.end_s[j] // 3600) + 1, hours)
            kw[h0:h1, c] += run.arrays.it_kw[j] * pue[c]
        ax2.stackplot(np.arange(hours), kw.T / 1e3, labels=curves.names)
        ax2.set_ylabel("MW drawn by computegrid's work")
        ax2.set_title("Where computegrid's work ran, hour by hour")
    ax2.set_xlabel("hour of the replay")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pareto(path: Path, summary: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, m in summary["policies"].items():
        ax.errorbar(m["mean_rtt_ms"], m["carbon_t"], yerr=m["ci95"]["carbon_t"], fmt="o",
                    color="tab:green" if name == "computegrid" else "tab:gray")  # fmt: skip
        label = f"{name} ({m['latency_violations']:g} viol.)" if m["latency_violations"] else name
        ax.annotate(label, (m["mean_rtt_ms"], m["carbon_t"]), fontsize=8)
    if "lower_bound" in summary:
        ax.axhline(summary["lower_bound"]["carbon_t"], color="tab:red", ls="--", label="bound")
        ax.legend()
    ax.set_xlabel("mean RTT origin → cluster (ms)")
    ax.set_ylabel("tCO2e (location-based)")
    ax.set_title("Carbon vs latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
