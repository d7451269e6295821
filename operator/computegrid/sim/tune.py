"""Weight and headroom tuning on training seeds, reported on separate test seeds (``python -m``).

Each candidate is a whole Policy: the low-class weights (medium and high as the default) and
the CriticalHeadroom reserve (None: the filter is off). It is scored by captured savings on
the training seeds (bound, nearest and least-loaded computed once per seed), with the ratio to
the bound, the mean queue wait (least-loaded's alongside: the wait target's reference), the
high class's wait and the electricity cost. The chosen candidate is then run on the test
seeds by ``computegrid sim``. Nothing here edits the default policy.

    python -m computegrid.sim.tune [JOBS] [CANDIDATE ...]
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import numpy as np

from computegrid.api.common import LatencySensitivity
from computegrid.scheduling import DEFAULT_WEIGHTS, Policy
from computegrid.scheduling.policy import DEFAULT_FILTERS
from computegrid.sim.metrics import captured_savings
from computegrid.sim.study import StudyConfig, run_seed

LOW = LatencySensitivity.LOW
TRAIN_SEEDS = (100, 101, 102)
HEADROOM = "CriticalHeadroom"

OLD_LOW: dict[str, float] = {
    "CarbonIntensity": 5,
    "RenewableShare": 1,
    "PowerPrice": 3,
    "LeastAllocated": 1,
    "HubPairing": 1,
}
CARBON_PRICE: dict[str, float] = {"CarbonIntensity": 5, "PowerPrice": 1}

# name: (low-class weights, headroom reserve or None)
CANDIDATES: dict[str, tuple[dict[str, float], float | None]] = {
    "old default (carbon 5, renewable 1, price 3, room 1, pairing 1)": (OLD_LOW, None),
    "old default + headroom 0.1": (OLD_LOW, 0.1),
    "carbon 5 only": ({"CarbonIntensity": 5}, None),
    "carbon 5, price 1": (CARBON_PRICE, None),
    "carbon 5, price 1 + headroom 0.01": (CARBON_PRICE, 0.01),
    "carbon 5, price 1 + headroom 0.015": (CARBON_PRICE, 0.015),
    "carbon 5, price 1 + headroom 0.02": (CARBON_PRICE, 0.02),
    "carbon 5, price 1 + headroom 0.03": (CARBON_PRICE, 0.03),
    "carbon 5, price 1 + headroom 0.05": (CARBON_PRICE, 0.05),
    "carbon 5, price 1 + headroom 0.1": (CARBON_PRICE, 0.1),
    "carbon 5, price 1 + headroom 0.15": (CARBON_PRICE, 0.15),
    "carbon 5, price 1 + headroom 0.2": (CARBON_PRICE, 0.2),
    "carbon 5, price 1 + headroom 0.3": (CARBON_PRICE, 0.3),
    "carbon 5, price 0.5 + headroom 0.02": ({"CarbonIntensity": 5, "PowerPrice": 0.5}, 0.02),
    "carbon 5 only + headroom 0.02": ({"CarbonIntensity": 5}, 0.02),
    "carbon 5 only + headroom 0.03": ({"CarbonIntensity": 5}, 0.03),
    "carbon 5 only + headroom 0.05": ({"CarbonIntensity": 5}, 0.05),
    "carbon 5 only + headroom 0.1": ({"CarbonIntensity": 5}, 0.1),
    "carbon 5 only + headroom 0.2": ({"CarbonIntensity": 5}, 0.2),
}


def policy_of(low: dict[str, float], reserve: float | None) -> Policy:
    weights = copy.deepcopy(DEFAULT_WEIGHTS)
    weights[LOW] = {name: float(low.get(name, 0.0)) for name in weights[LOW]}
    filters = [f for f in DEFAULT_FILTERS if f != HEADROOM]
    args: dict[str, dict[str, Any]] = {}
    if reserve is not None:
        filters.append(HEADROOM)
        args[HEADROOM] = {"reserve": reserve}
    return Policy(filters=filters, weights=weights, plugin_args=args)


def tune(seeds: tuple[int, ...], jobs: int, names: list[str] | None = None) -> dict[str, Any]:
    # The space-only study the tuning was done on (docs/sim.md): no deadline windows, so the
    # bound is the on-arrival one and the figures stay comparable.
    base = StudyConfig(jobs=jobs, seeds=seeds, policies=("nearest", "least-loaded"),
                       window_share=0.0)  # fmt: skip
    refs = {s: run_seed(base, s) for s in seeds}
    out: dict[str, Any] = {}
    for name in names or list(CANDIDATES):
        low, reserve = CANDIDATES[name]
        cfg = StudyConfig(jobs=jobs, seeds=seeds, policies=("computegrid",),
                          policy=policy_of(low, reserve), bound=False,
                          window_share=0.0)  # fmt: skip
        rows: dict[str, list[float]] = {k: [] for k in
            ("captured", "ratio", "wait", "wait_ll", "wait_high", "cny", "market")}  # fmt: skip
        for s in seeds:
            m = run_seed(cfg, s).metrics["computegrid"]
            ref = refs[s]
            assert ref.bound is not None
            near = ref.metrics["nearest"]["carbon_t"]
            rows["captured"].append(captured_savings(near, m["carbon_t"], ref.bound.carbon_t))
            rows["ratio"].append(m["carbon_t"] / ref.bound.carbon_t)
            rows["wait"].append(m["mean_wait_s"])
            rows["wait_ll"].append(ref.metrics["least-loaded"]["mean_wait_s"])
            rows["wait_high"].append(m["per_class"].get("high", {}).get("mean_wait_s", 0.0))
            rows["cny"].append(m["cost_cny"])
            rows["market"].append(m["carbon_market_t"])
        out[name] = {k: round(float(np.mean(v)), 4) for k, v in rows.items()}
        print(name, out[name], file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(tune(TRAIN_SEEDS, n, sys.argv[2:] or None)))
