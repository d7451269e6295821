"""The plugin registry: names to factories; which run, and with what weight, is the Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from computegrid.scheduling.plugins import (
    allowed_regions,
    carbon,
    cluster_selector,
    compute_type,
    data_transfer,
    headroom,
    known_location,
    latency,
    latency_budget,
    least_allocated,
    pairing,
    price,
    ready,
    renewable,
    resources_fit,
    taints,
    transfer_time,
)
from computegrid.scheduling.plugins.base import FilterPlugin, ScorePlugin

FILTERS: dict[str, Callable[..., FilterPlugin]] = {
    ready.NAME: ready.ClusterReady,
    known_location.NAME: known_location.KnownLocation,
    compute_type.NAME: compute_type.ComputeTypeFilter,
    allowed_regions.NAME: allowed_regions.AllowedRegions,
    cluster_selector.NAME: cluster_selector.ClusterSelectorFilter,
    taints.NAME: taints.TaintToleration,
    latency_budget.NAME: latency_budget.LatencyBudget,
    transfer_time.NAME: transfer_time.TransferTime,
    resources_fit.NAME: resources_fit.ResourcesFit,
    headroom.NAME: headroom.CriticalHeadroom,
}

SCORES: dict[str, Callable[..., ScorePlugin]] = {
    carbon.NAME: carbon.CarbonIntensity,
    renewable.NAME: renewable.RenewableShare,
    price.NAME: price.PowerPrice,
    least_allocated.NAME: least_allocated.LeastAllocated,
    latency.NAME: latency.Latency,
    pairing.NAME: pairing.HubPairing,
    data_transfer.NAME: data_transfer.DataTransfer,
}


def build_filter(name: str, args: dict[str, Any]) -> FilterPlugin:
    return FILTERS[name](**args)


def build_score(name: str, args: dict[str, Any]) -> ScorePlugin:
    return SCORES[name](**args)


__all__ = ["FILTERS", "SCORES", "FilterPlugin", "ScorePlugin", "build_filter", "build_score"]
