"""Each filter, table-driven: one row a case, the arithmetic in the comment."""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import cluster, job, state

from computegrid.api import ComputeType, LatencySensitivity, Region
from computegrid.scheduling import (
    ClusterSelector,
    ClusterTaint,
    Decision,
    Diagnosis,
    JobToleration,
    Scheduler,
    SelectorRequirement,
)
from computegrid.scheduling.plugins.resources_fit import pods_that_fit

HIGH, MEDIUM, LOW = LatencySensitivity.HIGH, LatencySensitivity.MEDIUM, LatencySensitivity.LOW


def verdict(result: Decision | Diagnosis, name: str) -> tuple[bool, str | None, str | None]:
    v = next(v for v in result.evaluation.verdicts() if v.cluster == name)
    return v.feasible, v.filter, v.reason


@pytest.mark.parametrize(
    ("free", "request_", "expected"),
    [
        (8, 3, 2),  # 8 // 3 = 2 whole pods
        (8, 4, 2),
        (3, 4, 0),
        (0, 1, 0),
        (5, 0, 0),  # a zero request never counts as fitting pods
    ],
)
def test_pods_that_fit(free: float, request_: float, expected: int) -> None:
    assert pods_that_fit(free, request_) == expected


@pytest.mark.parametrize(
    ("sensitivity", "override", "location", "feasible"),
    [
        (HIGH, None, "zhangjiakou", True),  # 2.3 ms ≤ 5
        (HIGH, None, "qingyang", False),  # 13.6 ms > 5
        (HIGH, None, "beijing", True),  # same city: intra-city 2.0 ms ≤ 5
        (MEDIUM, None, "qingyang", True),  # 13.6 ≤ 20
        (MEDIUM, None, "chengdu", False),  # 22.9 > 20
        (LOW, None, "chengdu", True),  # unbounded
        (LOW, 10.0, "qingyang", False),  # the override wins: 13.6 > 10
        (HIGH, 15.0, "qingyang", True),  # 13.6 ≤ 15
    ],
)
def test_latency_budget(
    sensitivity: LatencySensitivity, override: float | None, location: str, feasible: bool
) -> None:
    result = Scheduler().schedule(
        job("beijing", sensitivity=sensitivity, max_latency_ms=override), state(cluster(location))
    )
    ok, name, reason = verdict(result, location)
    assert ok is feasible
    if not feasible:
        assert name == "LatencyBudget"
        assert reason is not None and "from beijing exceeds" in reason


def test_resources_fit_is_per_node_not_per_cluster() -> None:
    # 4 nodes with 2 free GPUs each: 8 in all, but no node can take one pod of 4.
    fleet = state(cluster("qingyang", gpu=2, nodes=4, types=(ComputeType.INTELLIGENT,)))
    result = Scheduler().schedule(job(gpu=4, kind=ComputeType.INTELLIGENT), fleet)
    assert isinstance(result, Diagnosis)
    assert result.reasons()["qingyang"].startswith("ResourcesFit: fits 0 of 1 pods")


@pytest.mark.parametrize(
    ("pods", "fits"),
    [
        (4, True),  # 2 nodes x (64 - 32 used) // 16 = 2 + 2 = 4 pods
        (5, False),
    ],
)
def test_resources_fit_counts_every_pod(pods: int, fits: bool) -> None:
    # high class: CriticalHeadroom (which keeps 10 % from low jobs) does not apply
    fleet = state(cluster("qingyang", cpu=64, used_cpu=32, nodes=2))
    result = Scheduler().schedule(job("qingyang", cpu=16, pods=pods, sensitivity=HIGH), fleet)
    assert isinstance(result, Decision) is fits


def test_pods_only_count_nodes_of_the_job_type() -> None:
    # The general node is empty, but an intelligent job may not use it.
    fleet = state(cluster("qingyang", gpu=0, types=(ComputeType.GENERAL,)))
    result = Scheduler().schedule(job(kind=ComputeType.INTELLIGENT), fleet)
    assert isinstance(result, Diagnosis)
    assert result.reasons()["qingyang"] == (
        "ComputeType: offers general; the job needs intelligent"
    )


def test_unknown_resource_never_fits() -> None:
    fpga = replace(job(), pod_resources={"cpu": 1.0, "example.com/fpga": 1.0})
    result = Scheduler().schedule(fpga, state(cluster("qingyang")))
    assert isinstance(result, Diagnosis)
    assert result.reasons()["qingyang"] == "ResourcesFit: no node has example.com/fpga"


@pytest.mark.parametrize(
    ("allowed", "region", "feasible"),
    [
        (None, Region.WEST, True),
        (frozenset({Region.EAST}), Region.WEST, False),
        (frozenset({Region.EAST, Region.WEST}), Region.WEST, True),
        (frozenset({Region.CENTRAL}), Region.CENTRAL, True),
    ],
)
def test_allowed_regions(allowed: frozenset[Region] | None, region: Region, feasible: bool) -> None:
    result = Scheduler().schedule(
        job(allowed_regions=allowed), state(cluster("qingyang", region=region))
    )
    assert isinstance(result, Decision) is feasible


@pytest.mark.parametrize(
    ("selector", "labels", "feasible"),
    [
        (ClusterSelector(match_labels=(("tier", "gold"),)), {"tier": "gold"}, True),
        (ClusterSelector(match_labels=(("tier", "gold"),)), {"tier": "silver"}, False),
        (ClusterSelector(match_expressions=(SelectorRequirement("gpu", "Exists"),)), {}, False),
        (
            ClusterSelector(match_expressions=(SelectorRequirement("tier", "NotIn", ("bronze",)),)),
            {"tier": "gold"},
            True,
        ),
        (
            ClusterSelector(match_expressions=(SelectorRequirement("tier", "In", ("a", "b")),)),
            {"tier": "c"},
            False,
        ),
        (
            ClusterSelector(match_expressions=(SelectorRequirement("x", "DoesNotExist"),)),
            {},
            True,
        ),
    ],
)
def test_cluster_selector(
    selector: ClusterSelector, labels: dict[str, str], feasible: bool
) -> None:
    result = Scheduler().schedule(job(selector=selector), state(cluster("qingyang", labels=labels)))
    assert isinstance(result, Decision) is feasible


@pytest.mark.parametrize(
    ("taint", "tolerations", "feasible"),
    [
        (ClusterTaint("maintenance", "true", "NoSchedule"), (), False),
        (ClusterTaint("maintenance", "true", "PreferNoSchedule"), (), True),
        (
            ClusterTaint("maintenance", "true", "NoSchedule"),
            (JobToleration("maintenance", "Equal", "true", "NoSchedule"),),
            True,
        ),
        (
            ClusterTaint("maintenance", "true", "NoSchedule"),
            (JobToleration("maintenance", "Equal", "false"),),
            False,
        ),
        (ClusterTaint("dedicated", "ai", "NoExecute"), (JobToleration("", "Exists"),), True),
        (
            ClusterTaint("dedicated", "ai", "NoExecute"),
            (JobToleration("dedicated", "Exists", effect="NoSchedule"),),
            False,
        ),
    ],
)
def test_taints(
    taint: ClusterTaint, tolerations: tuple[JobToleration, ...], feasible: bool
) -> None:
    result = Scheduler().schedule(
        job(tolerations=tolerations), state(cluster("qingyang", taints=(taint,)))
    )
    assert isinstance(result, Decision) is feasible
    if not feasible:
        assert isinstance(result, Diagnosis)
        assert result.reasons()["qingyang"].startswith("TaintToleration: untolerated taint")


def test_not_ready_cluster_is_rejected_first() -> None:
    result = Scheduler().schedule(job(), state(cluster("qingyang", ready=False)))
    assert isinstance(result, Diagnosis)
    assert result.reasons() == {"qingyang": "ClusterReady: cluster is not Ready: 3 probes failed"}
    assert result.summary() == "0/1 clusters can take the job: 1 ClusterReady"


@pytest.mark.parametrize("sensitivity", [HIGH, MEDIUM, LOW])
def test_an_unknown_location_costs_only_its_own_cluster(sensitivity: LatencySensitivity) -> None:
    """A MemberCluster at 'atlantis' is filtered with a reason; the others still place jobs."""
    fleet = state(cluster("atlantis", cpu=512, carbon=1), cluster("zhangjiakou"))
    result = Scheduler().schedule(job("beijing", sensitivity=sensitivity), fleet)
    assert isinstance(result, Decision) and result.cluster.name == "zhangjiakou"  # 2.3 ms
    assert verdict(result, "atlantis") == (
        False,
        "KnownLocation",
        "location 'atlantis' is not a city of the latency model",
    )


def test_without_the_filter_an_unknown_location_is_infinitely_far_never_a_key_error() -> None:
    from computegrid.scheduling import Policy

    policy = Policy(filters=["ClusterReady", "LatencyBudget", "ResourcesFit"])
    fleet = state(cluster("atlantis", cpu=512, carbon=1), cluster("zhangjiakou"))
    assert fleet.latency_from("beijing").tolist() == [float("inf"), 2.3]
    result = Scheduler(policy).schedule(job("beijing", sensitivity=HIGH), fleet)
    assert isinstance(result, Decision) and result.cluster.name == "zhangjiakou"
    only_atlantis = state(cluster("atlantis"))
    diagnosis = Scheduler(policy).schedule(job("beijing", sensitivity=HIGH), only_atlantis)
    assert isinstance(diagnosis, Diagnosis)
    assert diagnosis.reasons()["atlantis"].startswith("LatencyBudget: RTT inf ms")


def test_a_pinned_job_runs_only_on_its_cluster_or_says_why() -> None:
    """Pinned delegation (issue 10): the child hub places the job where the parent chose."""
    fleet = state(
        cluster("qingyang", name="gansu-qingyang"), cluster("qingyang", name="yangtze-wuhu")
    )
    pinned = Scheduler().schedule(replace(job(), pinned_cluster="yangtze-wuhu"), fleet)
    assert isinstance(pinned, Decision) and pinned.cluster.name == "yangtze-wuhu"
    assert verdict(pinned, "gansu-qingyang") == (
        False,
        "ClusterSelector",
        "the parent hub pinned the job to yangtze-wuhu",
    )
    nowhere = Scheduler().schedule(replace(job(), pinned_cluster="gone"), fleet)
    assert not isinstance(nowhere, Decision)
