"""The scheduling policy: which plugins run and with what weight, per latency class.

A configuration object (loaded from a ConfigMap or file by the callers) validated on the way
in, so a typo in a plugin name is an error naming it rather than a silently ignored weight.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from computegrid.api.common import ApiModel, LatencySensitivity
from computegrid.scheduling.plugins import FILTERS, SCORES

DEFAULT_FILTERS = [
    "ClusterReady",
    "KnownLocation",
    "ComputeType",
    "AllowedRegions",
    "ClusterSelector",
    "TaintToleration",
    "LatencyBudget",
    "TransferTime",
    "ResourcesFit",
    "CriticalHeadroom",
]

# Low-sensitivity work is steered by carbon and price (East Data, West Computing); high
# sensitivity by latency, with carbon and price only breaking near-ties inside the 5 ms circle.
#
# The low-class weights are tuned with the simulator (docs/sim.md, "Tuning";
# ``python -m computegrid.sim.tune``) on training seeds 100-102 and reported on test seeds 0-4
# (``computegrid sim --jobs 20000 --seeds 5``). The previous low weights (carbon 5,
# renewable 1, price 3, least-allocated 1, pairing 1) followed contracted green share and
# cheap power onto a 685 g/kWh grid: 1.086 × the LP bound on location-based carbon, 0.705
# captured savings, 0.58 s mean wait (test). Carbon 5 + price 1, with CriticalHeadroom keeping
# 2 % of each cluster for critical work: 1.049 × bound, 0.841 captured, 0.06 s on training;
# 1.050 ×, 0.828, 0.07 s on test. Renewable share, least-allocated and pairing are 0 for low
# work: they pull it off the lowest-carbon grids (least-allocated 1 alone: 0.835 captured vs
# 0.851 on training; all three with price 3: 0.707). The cost (test): market-based carbon
# +7.3 t (44.6 → 51.9; contracted green supply no longer counts) and +5.0 % CNY of
# electricity. Medium and high are unchanged (not tuned).
#
# DataTransfer (issue 10) weighs moving a job's inputs; its weight is the class's carbon +
# price weights, which makes the transfer's carbon and money count exactly as much as the
# run's (plugins/data_transfer.py). Jobs without data leave it out, so they are unaffected.
DEFAULT_WEIGHTS: dict[LatencySensitivity, dict[str, float]] = {
    LatencySensitivity.LOW: {
        "CarbonIntensity": 5,
        "RenewableShare": 0,
        "PowerPrice": 1,
        "LeastAllocated": 0,
        "Latency": 0,
        "HubPairing": 0,
        "DataTransfer": 6,
    },
    LatencySensitivity.MEDIUM: {
        "CarbonIntensity": 3,
        "RenewableShare": 1,
        "PowerPrice": 2,
        "LeastAllocated": 1,
        "Latency": 3,
        "HubPairing": 1,
        "DataTransfer": 5,
    },
    LatencySensitivity.HIGH: {
        "CarbonIntensity": 1,
        "RenewableShare": 0,
        "PowerPrice": 1,
        "LeastAllocated": 1,
        "Latency": 6,
        "HubPairing": 0,
        "DataTransfer": 2,
    },
}


class Policy(ApiModel):
    """Enabled filters, score weights per latency class, and plugin arguments."""

    filters: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILTERS), description="Filter plugins, in order."
    )
    weights: dict[LatencySensitivity, dict[str, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_WEIGHTS.items()},
        description="Score plugin weights per latency class; 0 disables a plugin.",
    )
    plugin_args: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Arguments per plugin name."
    )
    alternatives: int = Field(default=3, ge=0, le=20, description="Runners-up to report.")

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in FILTERS:
                raise ValueError(f"unknown filter plugin {name!r}; known: {', '.join(FILTERS)}")
        if len(set(value)) != len(value):
            raise ValueError("a filter plugin is listed twice")
        return value

    @field_validator("weights")
    @classmethod
    def _known_scores(
        cls, value: dict[LatencySensitivity, dict[str, float]]
    ) -> dict[LatencySensitivity, dict[str, float]]:
        for sensitivity in LatencySensitivity:
            if sensitivity not in value:
                raise ValueError(f"weights for latency class {sensitivity.value!r} are missing")
        for sensitivity, weights in value.items():
            for name, weight in weights.items():
                if name not in SCORES:
                    raise ValueError(f"unknown score plugin {name!r}; known: {', '.join(SCORES)}")
                if weight < 0:
                    raise ValueError(f"weights.{sensitivity.value}.{name} must be ≥ 0")
            if not any(w > 0 for w in weights.values()):
                raise ValueError(f"weights.{sensitivity.value}: at least one weight must be > 0")
        return value

    @model_validator(mode="after")
    def _known_args(self) -> Policy:
        for name in self.plugin_args:
            if name not in FILTERS and name not in SCORES:
                raise ValueError(f"pluginArgs names unknown plugin {name!r}")
        return self


DEFAULT_POLICY = Policy()
