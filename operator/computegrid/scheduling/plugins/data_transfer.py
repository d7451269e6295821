"""Score: what moving the job's inputs costs, weighed exactly like the run's own carbon and price.

The run's footprint enters the score through CarbonIntensity (g/kWh) and PowerPrice (CNY/kWh).
To compare run + transfer, the transfer's carbon and money are spread over the run's energy
(``run kWh = IT power × PUE × expected hours``) as an extra intensity ``Δg = transfer g / run
kWh`` and price ``Δp = transfer CNY / run kWh``, and this plugin takes away what those would
take from the two scores, weighted by the class's own carbon and price weights, less the least
such drop of any cluster (a cost all clusters pay changes no ranking):

    drop  = (w_c × 100 Δg / worst + w_p × 100 Δp / ceiling) / (w_c + w_p)
    score = 100 − (drop − min over clusters of drop)

With this plugin's weight equal to ``w_c + w_p`` (the default), the weighted total ranks the
clusters as if their intensity were ``g + Δg`` and their price ``p + Δp``: the transfer counts
as much as running, no more. A larger weight makes moving data count for more. The score is
kept in [0, 100]: when the spread of drops is wider than 100, every drop shrinks by the same
factor (the order of clusters is kept, the exact trade-off is not). Jobs without data
leave this plugin out, weight and all, so their scores are unchanged. A job that declares no
duration is taken to run ``default_run_hours`` (1 h, our assumption).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from computegrid.scheduling.energy import PUE, it_power_kw
from computegrid.scheduling.plugins.carbon import NAME as CARBON
from computegrid.scheduling.plugins.carbon import WORST_G_PER_KWH
from computegrid.scheduling.plugins.price import CEILING_CNY_PER_KWH
from computegrid.scheduling.plugins.price import NAME as PRICE
from computegrid.scheduling.snapshot import JobRequest
from computegrid.scheduling.state import FleetState, FloatArray
from computegrid.scheduling.transfer import Transfer, duration_words, size_words, transfer_of

NAME = "DataTransfer"
DEFAULT_RUN_HOURS = 1.0
# A floor on run energy, so that a job asking for no powered resource (only pods) does not
# divide by zero: 1 Wh.
_MIN_RUN_KWH = 1e-3


@dataclass(frozen=True)
class DataTransfer:
    name: str = NAME
    static: bool = True
    only_for_data: bool = True  # the framework leaves the plugin out for jobs without data
    default_run_hours: float = DEFAULT_RUN_HOURS
    carbon_weight: float = 0.0  # set per latency class by ``bind``
    price_weight: float = 0.0
    worst: float = WORST_G_PER_KWH
    ceiling: float = CEILING_CNY_PER_KWH

    def __post_init__(self) -> None:
        if self.default_run_hours <= 0:
            raise ValueError(
                f"{NAME}.default_run_hours must be above 0, got {self.default_run_hours}"
            )

    def bind(
        self, weights: Mapping[str, float], plugin_args: Mapping[str, Mapping[str, Any]]
    ) -> DataTransfer:
        """This plugin for one latency class: that class's carbon and price weights."""
        return replace(
            self,
            carbon_weight=float(weights.get(CARBON, 0.0)),
            price_weight=float(weights.get(PRICE, 0.0)),
            worst=float(plugin_args.get(CARBON, {}).get("worst", self.worst)),
            ceiling=float(plugin_args.get(PRICE, {}).get("ceiling", self.ceiling)),
        )

    def cache_key(self, job: JobRequest) -> Hashable:
        data = job.data
        if data is None:
            return None
        power = (tuple(sorted(job.pod_resources.items())), job.parallelism)
        return (data.inputs, id(data.network), data.run_hours, power)

    def run_kwh(self, job: JobRequest, state: FleetState) -> FloatArray:
        """Energy of the whole run on each cluster, facility overhead included."""
        hours = job.data.run_hours if job.data and job.data.run_hours else self.default_run_hours
        pue = np.array([PUE[c.region] for c in state.clusters])
        return np.asarray(np.maximum(it_power_kw(job) * pue * hours, _MIN_RUN_KWH), dtype=float)

    def score(self, job: JobRequest, state: FleetState) -> FloatArray:
        if job.data is None:
            return np.full(state.size, 100.0)
        weight = self.carbon_weight + self.price_weight
        moved = transfer_of(job.data, state)
        if weight <= 0 or moved.unknown is not None:
            return np.full(state.size, 100.0)
        kwh = self.run_kwh(job, state)
        carbon_drop = 100.0 * moved.carbon_g / kwh / self.worst
        price_drop = 100.0 * moved.cny / kwh / self.ceiling
        drop = (self.carbon_weight * carbon_drop + self.price_weight * price_drop) / weight
        # Less the least drop: what every cluster pays tells none apart. A spread wider than
        # the score's range shrinks by one factor so the worst cluster lands on 0 (clamping
        # instead would stop penalising the farthest clusters while nearer ones kept paying,
        # so more data could favour a farther cluster).
        spread = drop - drop.min()
        widest = float(spread.max())
        if widest > 100.0:
            spread *= 100.0 / widest
        return np.asarray(100.0 - spread, dtype=float)

    def explain(self, job: JobRequest, state: FleetState, cluster: int) -> str:
        assert job.data is not None
        moved = transfer_of(job.data, state)
        gib = float(moved.moved_gib[cluster])
        if gib == 0:
            return f"data already here ({size_words(job.data.total_gib)})"
        words = (
            f"moves {size_words(gib)} from {', '.join(moved.sources)}: "
            f"{duration_words(float(moved.seconds[cluster]))}, "
            f"{moved.carbon_g[cluster] / 1000:.3g} kgCO2e, {moved.cny[cluster]:.3g} CNY"
        )
        near = next_to_data(job, state, moved)
        if near == cluster:
            return words
        run_g = self.run_kwh(job, state) * state.carbon
        saved_kg = (
            run_g[near] + moved.carbon_g[near] - run_g[cluster] - moved.carbon_g[cluster]
        ) / 1000
        verb, than = ("still saves", "against") if saved_kg >= 0 else ("costs", "more than")
        return (
            f"{words}; {verb} {abs(saved_kg):.3g} kgCO2e {than} "
            f"running next to the data ({state.names[near]})"
        )


def next_to_data(job: JobRequest, state: FleetState, moved: Transfer) -> int:
    """The cluster offering the job's compute type that the data reaches soonest (ties: least
    moved, then nearest the first source, then name); any cluster if none offers it."""
    offering = [i for i, c in enumerate(state.clusters) if job.compute_type in c.compute_types]
    candidates = offering or list(range(state.size))
    rtt = state.latency_from(moved.sources[0]) if moved.sources else np.zeros(state.size)
    return min(
        candidates,
        key=lambda i: (moved.seconds[i], moved.moved_gib[i], rtt[i], state.names[i]),
    )
