"""Weight tuning on training seeds, reported on separate test seeds (``python -m``).

Each candidate changes the low- and medium-class weights of the default policy; it is scored
by captured savings on the training seeds (bound and nearest computed once per seed),
with the mean queue wait alongside. The best candidate is then run on the test seeds by
``computegrid sim --policy-file``. Nothing here edits the default policy.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling import DEFAULT_WEIGHTS, Policy
from computegrid.sim.metrics import captured_savings
from computegrid.sim.study import StudyConfig, run_seed

LOW, MEDIUM = LatencySensitivity.LOW, LatencySensitivity.MEDIUM

CANDIDATES: dict[str, dict[LatencySensitivity, dict[str, float]]] = {
    "default": {},
    "low: carbon only": {LOW: {"CarbonIntensity": 5}},
    "low: carbon 5, price 1, least-allocated 1": {
        LOW: {"CarbonIntensity": 5, "PowerPrice": 1, "LeastAllocated": 1}
    },
    "low: carbon 5, price 1": {LOW: {"CarbonIntensity": 5, "PowerPrice": 1}},
    "low: carbon 5, price 3, least-allocated 1": {
        LOW: {"CarbonIntensity": 5, "PowerPrice": 3, "LeastAllocated": 1}
    },
    "low+medium: carbon 5, price 1, least-allocated 1; medium latency 1": {
        LOW: {"CarbonIntensity": 5, "PowerPrice": 1, "LeastAllocated": 1},
        MEDIUM: {"CarbonIntensity": 3, "PowerPrice": 1, "LeastAllocated": 1, "Latency": 1},
    },
    "low+medium: carbon only": {LOW: {"CarbonIntensity": 5}, MEDIUM: {"CarbonIntensity": 3}},
}


def weights_of(change: dict[LatencySensitivity, dict[str, float]]) -> dict[Any, Any]:
    weights = copy.deepcopy(DEFAULT_WEIGHTS)
    for cls, w in change.items():
        weights[cls] = dict(w)
    return weights


def tune(seeds: tuple[int, ...], jobs: int) -> dict[str, Any]:
    base = StudyConfig(jobs=jobs, seeds=seeds, policies=("nearest",))
    refs = {s: run_seed(base, s) for s in seeds}
    out = {}
    for name, change in CANDIDATES.items():
        cfg = StudyConfig(jobs=jobs, seeds=seeds, policies=("computegrid",),
                          policy=Policy(weights=weights_of(change)), bound=False)  # fmt: skip
        caps, waits, costs = [], [], []
        for s in seeds:
            m = run_seed(cfg, s).metrics["computegrid"]
            ref = refs[s]
            assert ref.bound is not None
            near = ref.metrics["nearest"]["carbon_t"]
            caps.append(captured_savings(near, m["carbon_t"], ref.bound.carbon_t))
            waits.append(m["mean_wait_s"])
            costs.append(m["cost_cny"])
        out[name] = {
            "captured_savings": round(float(np.mean(caps)), 4),
            "mean_wait_s": round(float(np.mean(waits)), 2),
            "cost_cny": round(float(np.mean(costs)), 0),
        }
        print(name, out[name], file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(tune((100, 101, 102), int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
