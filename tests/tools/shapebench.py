"""A finished job's run-profile shape read from its body against a full parse, side by side.

Why: a start lists the hub's finished ComputeJobs, thousands of them, and each Succeeded one
teaches the run profile its shape (handlers/placement.py ``shape_of_body``). Reading the three
fields must cost a small fraction of the parse it replaces. Run:
``python -m tests.tools.shapebench [N]``; prints both per-job times and their ratio.
"""

from __future__ import annotations

import sys
import timeit
from typing import Any

from computegrid.api import restricted_template
from computegrid.handlers.placement import parse_job, shape_of_body, to_request

BODY: dict[str, Any] = {
    "metadata": {
        "namespace": "team-ai",
        "name": "finetune",
        "annotations": {
            "computegrid.io/origin": "shanghai",
            "computegrid.io/latency-sensitivity": "low",
        },
    },
    "spec": {
        "computeType": "intelligent",
        "resources": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"},
        "template": restricted_template("busybox"),
    },
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    read = timeit.timeit(lambda: shape_of_body(BODY), number=n) / n
    parse = timeit.timeit(lambda: to_request(parse_job(BODY)), number=n) / n
    print(
        f"shape_of_body {read * 1e6:.1f} µs a job, parse_job + to_request {parse * 1e6:.1f} µs: "
        f"{parse / read:.0f}× (n = {n})"
    )


if __name__ == "__main__":
    main()
