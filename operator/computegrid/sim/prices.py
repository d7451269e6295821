"""Prices for room, learned from the LP bound on training traces (``python -m``).

The study's evaluation seeds are 0-4; these are learned on the training seeds (100-102, as
the weight tuning, sim/tune.py) and never on an evaluation trace:

    python -m computegrid.sim.prices learn DIR [--jobs N] [--seeds 100,101,102]
        each training seed's trace and fleet, the time-expanded LP bound and its dual prices
        per (hour, cluster, pool, resource) → DIR/duals-SEED.npy; the seed's nearest,
        computegrid, computegrid-timed (not with --lp-only) and bound carbon →
        DIR/reference.json; a seed whose LP DIR already holds only gets the replays it lacks
    python -m computegrid.sim.prices try DIR CANDIDATE … [--seeds 100,101]
        each candidate on each training seed (or those named) with prices learned from the
        *other* training seeds (leave one out, so no trace prices itself): ratio to the
        bound, captured share, carbon against computegrid-timed
    python -m computegrid.sim.prices write DIR CANDIDATE FILE
        the candidate's prices from every training seed, for ``computegrid sim --prices FILE``

A candidate is ``FOLD:SCALE[:CLASSES]``: FOLD ``daily`` (the mean over days 2-7 of each hour
of the day: the first day fills an empty fleet, after day 7 no job arrives), ``daily-all``
(hours 0-168) or ``hourly`` (hour by hour of the trace's week, the same calendar week as the
evaluation traces); SCALE multiplies the prices; CLASSES (``low+medium``, default all) are
the classes that pay.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling.capacity_price import RESOURCES, CapacityPrices, learn_prices
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.metrics import captured_savings
from computegrid.sim.study import StudyConfig, run_seed, stderr_log

TRAIN_SEEDS = (100, 101, 102)
FOLDS: dict[str, tuple[int | None, int, int | None]] = {  # (period h, from h, to h)
    "daily": (24, 24, 168),
    "daily-all": (24, 0, 168),
    "hourly": (None, 0, None),
}
REFERENCE = ("nearest", "computegrid", "computegrid-timed")


def candidate_prices(
    spec: str, duals: Sequence[np.ndarray], meta: dict[str, Any]
) -> CapacityPrices:
    """The prices a candidate ``FOLD:SCALE[:CLASSES]`` learns from ``duals``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[0] not in FOLDS:
        raise ValueError(f"candidate {spec!r}: expected FOLD:SCALE[:CLASSES], FOLD one of "
                         f"{', '.join(FOLDS)}")  # fmt: skip
    period, first, last = FOLDS[parts[0]]
    prices = learn_prices(
        duals, bucket_hours=meta["bucket_hours"], period_h=period, from_h=first, to_h=last,
        clusters=meta["clusters"],
    ).scaled(float(parts[1]))  # fmt: skip
    if len(parts) == 3:
        classes = frozenset(LatencySensitivity(c) for c in parts[2].split("+"))
        prices = CapacityPrices(prices.start_s, prices.g_per_unit_h, prices.period_h,
                                prices.clusters, classes)  # fmt: skip
    return prices


def learn(out: Path, jobs: int, seeds: Sequence[int], *, reference: bool = True) -> None:
    """Per seed (saved as it finishes: a slow LP on a shared machine loses nothing done):
    DIR/duals-SEED.npy, and the seed's figures in DIR/reference.json."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = StudyConfig(jobs=jobs, seeds=tuple(seeds), policies=REFERENCE if reference else (),
                      bound_time_limit_s=3600.0)  # fmt: skip
    path = out / "reference.json"
    meta: dict[str, Any] = {"jobs": jobs, "seeds": {}}
    if path.exists():
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta["jobs"] != jobs:
            raise ValueError(f"{path}: learned on {meta['jobs']} jobs, not {jobs}")
    for seed in seeds:
        saved = meta["seeds"].get(str(seed), {})
        # A seed whose LP is saved is not solved again (15-25 min on a loaded machine): only
        # the reference replays it lacks (say, learned with --lp-only) are run.
        solved = "bound" in saved and (out / f"duals-{seed}.npy").exists()
        missing = tuple(name for name in cfg.policies if name not in saved)
        if solved and not missing:
            continue
        run = run_seed(replace(cfg, bound=not solved, policies=missing), seed, stderr_log)
        entry = {**saved, **{name: run.metrics[name]["carbon_t"] for name in missing}}
        if not solved:
            assert run.bound is not None and run.bound.capacity_duals is not None
            np.save(out / f"duals-{seed}.npy", run.bound.capacity_duals, allow_pickle=False)
            meta["bucket_hours"] = run.bound.bucket_hours
            meta["clusters"] = list(run.state.names)
            entry.update(bound=run.bound.carbon_t, slack_jobs=run.bound.slack_jobs,
                         solve_s=round(run.bound.solve_s, 1))  # fmt: skip
        meta["seeds"][str(seed)] = entry
        path.write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _load(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = json.loads((directory / "reference.json").read_text(encoding="utf-8"))
    duals = {s: np.load(directory / f"duals-{s}.npy", allow_pickle=False) for s in meta["seeds"]}
    return duals, meta


def try_candidates(
    directory: Path, specs: Sequence[str], seeds: Sequence[str] | None = None
) -> dict[str, Any]:
    """Each candidate on each training seed (``seeds``: some of them, to split the work
    between processes), priced from the duals of every *other* learned seed."""
    duals, meta = _load(directory)
    unknown = set(seeds or ()) - set(meta["seeds"])
    if unknown:
        raise ValueError(f"--seeds: {', '.join(sorted(unknown))} not learned in {directory}")
    if any("computegrid-timed" not in ref for ref in meta["seeds"].values()):
        raise ValueError(f"{directory}: learned with --lp-only; try needs the reference replays")
    chosen = {s: ref for s, ref in meta["seeds"].items() if seeds is None or s in seeds}
    results: dict[str, Any] = {}
    for spec in specs:
        rows: dict[str, list[float]] = {"ratio": [], "captured": [], "vs_timed": [], "carbon_t": []}
        for seed, ref in chosen.items():
            others = [d for s, d in duals.items() if s != seed]
            cfg = StudyConfig(jobs=meta["jobs"], seeds=(int(seed),), bound=False,
                              policies=("computegrid-priced",),
                              prices=candidate_prices(spec, others, meta))  # fmt: skip
            m = run_seed(cfg, int(seed)).metrics["computegrid-priced"]
            if m["deadline_misses"] or m["latency_violations"] or m["overcommits"]:
                print(f"{spec} seed {seed}: misses {m['deadline_misses']}, violations "
                      f"{m['latency_violations']}, overcommits {m['overcommits']}",
                      file=sys.stderr)  # fmt: skip
            rows["ratio"].append(m["carbon_t"] / ref["bound"])
            rows["captured"].append(captured_savings(ref["nearest"], m["carbon_t"], ref["bound"]))
            rows["vs_timed"].append(m["carbon_t"] - ref["computegrid-timed"])
            rows["carbon_t"].append(m["carbon_t"])
            stderr_log(f"{spec} seed {seed}: {m['carbon_t']:.4f} t, ratio {rows['ratio'][-1]:.4f},"
                       f" vs timed {rows['vs_timed'][-1]:+.4f} t")  # fmt: skip
        results[spec] = {k: round(float(np.mean(v)), 4) for k, v in rows.items()}
        results[spec]["per_seed"] = {k: [round(x, 6) for x in v] for k, v in rows.items()}
        results[spec]["seeds"] = list(chosen)
        print(spec, results[spec], file=sys.stderr, flush=True)
    return results


def save_prices(prices: CapacityPrices, path: Path, source: str) -> None:
    path.write_text(json.dumps({
        "source": source,
        "start_s": prices.start_s,
        "period_h": prices.period_h,
        "clusters": list(prices.clusters),
        "types": list(TYPE_CODES),
        "resources": list(RESOURCES),
        "applies_to": sorted(c.value for c in prices.applies_to),
        # Full precision: memory is priced per byte (about 1e-10 g per byte·hour), which a
        # rounding to 9 decimals set to 0 (session 4's files priced no memory at all).
        "g_per_unit_h": prices.g_per_unit_h.tolist(),
    }), encoding="utf-8")  # fmt: skip


def load_prices(path: Path) -> CapacityPrices:
    """A prices file of ``write``; a bad one raises ValueError naming the field."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a JSON object")
    for key in ("start_s", "g_per_unit_h", "types", "resources"):
        if key not in raw:
            raise ValueError(f"{path}: {key}: missing")
    if list(raw["types"]) != list(TYPE_CODES) or list(raw["resources"]) != list(RESOURCES):
        raise ValueError(f"{path}: types/resources: not {list(TYPE_CODES)} / {list(RESOURCES)}")
    every = [c.value for c in LatencySensitivity]
    try:
        classes = frozenset(LatencySensitivity(c) for c in raw.get("applies_to", every))
        table = np.asarray(raw["g_per_unit_h"], dtype=float)
        clusters = tuple(raw.get("clusters", ()))
        return CapacityPrices(float(raw["start_s"]), table, raw.get("period_h"), clusters, classes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m computegrid.sim.prices")
    sub = parser.add_subparsers(dest="command", required=True)
    p_learn = sub.add_parser("learn")
    p_learn.add_argument("dir", type=Path)
    p_learn.add_argument("--jobs", type=int, default=20_000)
    p_learn.add_argument("--seeds", default=",".join(map(str, TRAIN_SEEDS)))
    p_learn.add_argument("--lp-only", action="store_true", help="no reference replays")
    p_try = sub.add_parser("try")
    p_try.add_argument("dir", type=Path)
    p_try.add_argument("candidates", nargs="+")
    p_try.add_argument("--seeds", default=None, help="only these learned seeds (a,b)")
    p_write = sub.add_parser("write")
    p_write.add_argument("dir", type=Path)
    p_write.add_argument("candidate")
    p_write.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "learn":
        seeds = [int(s) for s in args.seeds.split(",")]
        if set(seeds) & set(range(5)):
            parser.error("--seeds: 0-4 are the evaluation seeds; learn on others")
        learn(args.dir, args.jobs, seeds, reference=not args.lp_only)
    elif args.command == "try":
        only = None if args.seeds is None else args.seeds.split(",")
        print(json.dumps(try_candidates(args.dir, args.candidates, only)))
    else:
        duals, meta = _load(args.dir)
        prices = candidate_prices(args.candidate, list(duals.values()), meta)
        save_prices(prices, args.file, f"{args.candidate}, LP duals of seeds "
                    f"{','.join(duals)}, {meta['jobs']} jobs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
