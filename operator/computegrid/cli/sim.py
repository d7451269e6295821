"""``computegrid sim``: replay a job trace over a fleet (national or a file) under every policy.

Prints a table (or ``--json``: one object, ``policies`` → metrics, ``lower_bound``,
``targets``, ``study``); ``--report DIR`` also writes a Markdown report with PNG plots.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from computegrid.cli.errors import UsageError
from computegrid.fleet_data.fleet_file import load_fleet_clusters
from computegrid.fleet_data.inputs import InputError
from computegrid.fleet_data.power import MODEL_PROVINCES, SCENARIOS
from computegrid.scheduling import DEFAULT_POLICY, Policy
from computegrid.sim.bound import INTEGRAL
from computegrid.sim.placers import KNOWN_POLICIES, NEEDS_LP_PLAN, POLICY_NAMES
from computegrid.sim.prices import load_prices
from computegrid.sim.study import StudyConfig, curve_notes, run_study, stderr_log
from computegrid.sim.trace import WINDOW_SHARE


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="replay a trace under every policy; carbon, cost, waits vs a lower bound"
    )
    parser.add_argument("--trace", default="synthetic", help="synthetic, or an Alibaba "
                        "GPU trace v2023 pod list (openb_pod_list_*.csv)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per seed")
    parser.add_argument("--seeds", type=int, default=5, help="seeds (traces) to average over")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST..FIRST+K-1")
    parser.add_argument("--fleet", default="national", help="'national' (the built-in "
                        "fleet) or a fleet YAML file as for explain (optional 'province:' per "
                        "cluster for hourly power curves, else flat)")  # fmt: skip
    parser.add_argument("--days", type=float, default=7.0, help="synthetic arrivals span")
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="node inventory repeats per cluster (default: from --util)",
    )
    parser.add_argument(
        "--util",
        type=float,
        default=0.5,
        help="target mean utilisation of the busiest pool (default 0.5)",
    )
    parser.add_argument(
        "--policies",
        default=",".join(POLICY_NAMES),
        help="comma-separated, from: " + ", ".join(KNOWN_POLICIES),
    )
    parser.add_argument(
        "--policy-file",
        type=Path,
        default=None,
        help="a Policy (YAML/JSON) for computegrid instead of the default",
    )
    parser.add_argument(
        "--window-share",
        type=float,
        default=WINDOW_SHARE,
        help=f"share of low/medium jobs with a deadline window, 2-24 h of slack "
        f"(default {WINDOW_SHARE}; 0: none, the study before time-shifting)",
    )
    parser.add_argument(
        "--data-share",
        type=float,
        default=0.0,
        help="share of low/medium jobs reading a dataset at their origin, log-uniform 1 GiB "
        "to 2 TiB (default 0: none, the study before data moved with the work)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=None,
        help="prices for room for computegrid-priced (python -m computegrid.sim.prices write)",
    )
    parser.add_argument("--scenario", default="base", choices=SCENARIOS)
    parser.add_argument("--no-bound", action="store_true", help="skip the LP lower bound")
    parser.add_argument("--bound-time-limit", type=float, default=300.0,
                        help="seconds HiGHS may take per LP bound (default 300)")  # fmt: skip
    parser.add_argument("--bound-integral", default="none", choices=INTEGRAL,
                        help="jobs the bound places whole (binary): none (the LP relaxation), "
                        "gpu (every job asking for a GPU), all; the MILP's dual bound is "
                        "reported (default none)")  # fmt: skip
    parser.add_argument("--bound-milp-time-limit", type=float, default=600.0,
                        help="seconds HiGHS may take per MILP bound (default 600); the dual "
                        "bound reached by then is still a bound")  # fmt: skip
    parser.add_argument("--bound-instants", type=int, default=0, metavar="ROUNDS",
                        help="tighten the bound: re-solve with capacity held at the instants "
                        "the LP overfills a pool, up to ROUNDS times (default 0: hourly "
                        "averages only)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--report", type=Path, default=None, help="write report.md + PNGs here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> StudyConfig:
    if args.jobs < 1 or args.seeds < 1:
        raise UsageError("--jobs and --seeds must be at least 1")
    clusters = None
    if args.fleet != "national":
        try:
            clusters = load_fleet_clusters(Path(args.fleet), provinces=MODEL_PROVINCES)
        except InputError as exc:
            raise UsageError(str(exc)) from None
    if args.trace != "synthetic" and not Path(args.trace).is_file():
        raise UsageError(f"--trace {args.trace!r}: not 'synthetic' and no such file")
    if args.scale is not None and args.scale < 1:
        raise UsageError("--scale must be at least 1")
    if not 0 < args.util <= 1:
        raise UsageError("--util must be in (0, 1]")
    if args.days <= 0:
        raise UsageError("--days must be above 0")
    if not 0 <= args.window_share <= 1:
        raise UsageError("--window-share must be in [0, 1]")
    if args.bound_time_limit <= 0:
        raise UsageError("--bound-time-limit must be above 0")
    if args.bound_milp_time_limit <= 0:
        raise UsageError("--bound-milp-time-limit must be above 0")
    if args.bound_instants < 0:
        raise UsageError("--bound-instants must be 0 or more")
    if not 0 <= args.data_share <= 1:
        raise UsageError("--data-share must be in [0, 1]")
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in KNOWN_POLICIES]
    if unknown or not names:
        raise UsageError(f"--policies: unknown {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(KNOWN_POLICIES)}")  # fmt: skip
    needs_plan = [p for p in names if p in NEEDS_LP_PLAN]
    if needs_plan and args.no_bound:
        raise UsageError(f"--policies {', '.join(needs_plan)} replays the bound's plan: "
                         "drop --no-bound")  # fmt: skip
    prices = None
    if "computegrid-priced" in names:
        if args.prices is None:
            raise UsageError("--policies computegrid-priced needs --prices FILE")
        try:
            prices = load_prices(args.prices)
        except OSError as exc:
            raise UsageError(f"--prices {args.prices}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--prices {exc}") from None
    if "nearest" not in names:
        names.insert(0, "nearest")  # savings and captured savings are measured against it
    return StudyConfig(
        jobs=args.jobs,
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        trace=args.trace,
        days=args.days,
        scale=args.scale,
        target_util=args.util,
        policies=tuple(names),
        policy=load_policy(args.policy_file),
        scenario=args.scenario,
        bound=not args.no_bound,
        clusters=clusters,
        window_share=args.window_share,
        data_share=args.data_share,
        prices=prices,
        bound_time_limit_s=args.bound_time_limit,
        bound_integral=args.bound_integral,
        bound_milp_time_limit_s=args.bound_milp_time_limit,
        bound_instant_rounds=args.bound_instants,
    )


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return DEFAULT_POLICY
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Policy.model_validate(raw)
    except OSError as exc:
        raise UsageError(f"--policy-file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--policy-file {path}: not YAML ({exc.__class__.__name__})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"--policy-file {path}: {where}: {first['msg']}") from None


@contextlib.contextmanager
def solver_chatter_to_stderr() -> Iterator[None]:
    """Native code's writes to stdout go to stderr meanwhile: HiGHS' MILP prints a line
    ("HighsMipSolverData::transformNewIntegerFeasibleSolution …") whatever ``disp`` says,
    and stdout is the table or the one JSON object a caller parses."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    started = time.perf_counter()
    try:
        with solver_chatter_to_stderr():
            summary, runs = run_study(cfg, None if args.quiet else stderr_log)
    except ValueError as exc:  # a trace file the loader cannot read
        raise UsageError(str(exc)) from None
    summary["study"]["wall_s"] = round(time.perf_counter() - started, 1)
    if args.report is not None:
        from computegrid.sim.report import write_report

        write_report(args.report, cfg, summary, runs)
        if not args.quiet:
            stderr_log(f"report: {args.report / 'report.md'}")
    if args.json:
        print(json.dumps(summary))
    else:
        print(table(summary))
    return 0


def table(summary: dict[str, Any]) -> str:
    """A fixed-width table of the headline figures (means over seeds)."""
    head = (f"{'policy':17} {'tCO2e':>9} {'±95%':>6} {'CNY':>10} {'viol':>6} {'over':>5} "
            f"{'miss':>5} {'wait s':>8} {'→bound':>7} {'captured':>8}")  # fmt: skip
    lines = [head]
    for name, m in summary["policies"].items():
        lines.append(
            f"{name:17} {m['carbon_t']:9.2f} {m['ci95']['carbon_t']:6.2f} {m['cost_cny']:10.0f} "
            f"{m['latency_violations']:6.0f} {m['overcommits']:5.0f} "
            f"{m.get('deadline_misses', 0):5.0f} {m['mean_wait_s']:8.2f} "
            f"{m.get('ratio_to_bound', float('nan')):7.3f} "
            f"{m.get('captured_savings', float('nan')):8.3f}"
        )
    if "lower_bound" in summary:
        bound = summary["lower_bound"]
        note = (
            f"  (approximate: {bound['slack_jobs']} jobs cannot start on arrival anywhere, "
            "so no ratio is taken; add capacity with --scale)"
            if bound.get("slack_jobs")
            else ""
        )
        lines.append(f"{'lower bound':17} {bound['carbon_t']:9.2f}  ({bound['method']}){note}")
        if "milp" in bound:
            lines.append(f"{'  LP relaxation':17} {bound['lp_carbon_t']:9.2f}  (ratios: "
                         "ratio_to_lp_bound in --json)")  # fmt: skip
    lines.extend(curve_notes(summary["study"]))
    return "\n".join(lines)
