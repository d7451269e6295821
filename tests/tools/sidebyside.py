"""Kueue's MultiKueue, then computegrid, under the same N jobs on the same fleet: one JSON.

Why: issue 12 wants the two compared side by side, measured the same way (kueuerun reuses
loadrun's watches, /proc sampling and apiserver counters). The runs go back to back, Kueue
first, each in a namespace of its own that is removed afterwards, so neither sees the
other's objects; nothing else is controlled (the machine is shared: read the load average
that the summary records at the start and the end of each run).

Run: ``python -m tests.tools.sidebyside --fleet <workdir>/fleet.json --jobs 200``
(deploy/bench/build-kueue.sh first; ``--operator-cwd`` picks the computegrid checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.tools.kueuerun import (
    KueueRun,
    add_arguments,
    check_arguments,
    config_from,
    shared_options,
)
from tests.tools.loadrun import LoadRun, RunConfig


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ratio(a: Any, b: Any) -> float | None:
    """a / b rounded, None when either is missing or b is zero."""
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(a / b, 2)


def compare(kueue: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    """The headline figures next to each other; ratio = computegrid / Kueue."""
    operator = grid.get("operator") or {}
    rows = {
        "dispatches_per_s": (kueue.get("dispatches_per_s"), grid.get("dispatches_per_s")),
        "create_to_member_job_p50_s": (
            (kueue.get("create_to_member_job_s") or {}).get("p50"),
            (grid.get("create_to_member_job_s") or {}).get("p50"),
        ),
        "create_to_member_job_p99_s": (
            (kueue.get("create_to_member_job_s") or {}).get("p99"),
            (grid.get("create_to_member_job_s") or {}).get("p99"),
        ),
        "cpu_per_job_s": (kueue.get("cpu_per_job_s"), operator.get("cpu_per_job_s")),
        "cpu_idle_pct": (kueue.get("cpu_idle_pct"), operator.get("cpu_idle_pct")),
        "rss_peak_mb": (kueue.get("rss_peak_total_mb"), operator.get("rss_peak_mb")),
        "hub_writes_per_job": (
            kueue.get("hub_writes_per_job"),
            grid.get("hub_writes_per_job_until_finished"),
        ),
        "all_finished_s": (kueue.get("all_finished_s"), grid.get("all_finished_s")),
        "first_dispatch_after_start_s": (
            (kueue.get("restart") or {}).get("first_dispatch_s"),
            grid.get("first_dispatch_s"),
        ),
    }
    return {
        name: {"kueue": k, "computegrid": g, "computegrid_over_kueue": ratio(g, k)}
        for name, (k, g) in rows.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tools.sidebyside",
        description="MultiKueue then computegrid under N jobs on one fleet; one JSON summary.",
    )
    add_arguments(parser)
    parser.add_argument(
        "--operator-cwd", type=Path, default=Path.cwd(), help="computegrid checkout to run"
    )
    parser.add_argument("--skip-kueue", action="store_true", help="computegrid only")
    parser.add_argument("--skip-computegrid", action="store_true", help="Kueue only")
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if not (args.operator_cwd / "operator" / "computegrid").is_dir():
        parser.error(f"--operator-cwd: {args.operator_cwd} is not a computegrid checkout")

    out: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    if not args.skip_kueue:
        load = load_average()
        out["kueue"] = KueueRun(config_from(args)).execute()
        out["kueue"]["load_average"] = {"start": load, "end": load_average()}
    if not args.skip_computegrid:
        load = load_average()
        out["computegrid"] = LoadRun(
            RunConfig(operator_cwd=args.operator_cwd.resolve(), **shared_options(args))
        ).execute()
        out["computegrid"]["load_average"] = {"start": load, "end": load_average()}
    if "kueue" in out and "computegrid" in out:
        out["compare"] = compare(out["kueue"], out["computegrid"])
    print(json.dumps(out, indent=2))
    return 0 if all("error" not in out.get(k, {}) for k in ("kueue", "computegrid")) else 1


if __name__ == "__main__":
    sys.exit(main())
