"""A Decision in the shape of ``ComputeJob.status.placement``, shared by the operator and explain.

One function so that ``computegrid explain -o json`` and the status the operator writes can
never drift apart.
"""

from __future__ import annotations

from computegrid.api.compute_job import PlacementAlternative, PlacementStatus
from computegrid.scheduling.result import Decision


def placement_status(decision: Decision, decided_at: str | None = None) -> PlacementStatus:
    """The status.placement of a decided job; ``decided_at`` is passed in (no clock here)."""
    cluster = decision.cluster
    nearest, carbon_saved, cost_saved = decision.savings_per_hour()
    return PlacementStatus(
        cluster=cluster.name,
        hub=cluster.hub,
        region=cluster.region,
        latency_ms=round(decision.latency_ms, 2),
        carbon_intensity=cluster.power.carbon_intensity,
        price_per_kwh=cluster.power.price_per_kwh,
        score=round(decision.score, 2),
        breakdown=decision.breakdown,
        reasons=decision.reasons(),
        alternatives=[
            PlacementAlternative(cluster=name, score=score)
            for name, score in decision.alternatives()
        ],
        nearest_cluster=nearest,
        carbon_saved_g_per_hour=round(carbon_saved, 1),
        cost_saved_cny_per_hour=round(cost_saved, 3),
        decided_at=decided_at,
    )
