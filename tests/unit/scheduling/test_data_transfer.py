"""Data that moves with the work (issue 10): the transfer filter and score, table-driven with
the arithmetic in comments, and properties.

The toy network: Shanghai data, a Shanghai cluster (east, 600 g/kWh) and a Chengdu cluster
(west, 140 g/kWh), 10 Gbps between their hubs, 0.01 kWh per GB at 500 g/kWh, so one GiB
(1.073741824 GB) moved emits 5.369 g and takes 0.859 s.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from builders import cluster, job, state
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.api import LatencySensitivity, Region
from computegrid.handlers.placement import InvalidJob, parse_job
from computegrid.scheduling import (
    DataInput,
    Decision,
    Diagnosis,
    JobData,
    NetworkModel,
    Policy,
    Scheduler,
)
from computegrid.scheduling.policy import DEFAULT_FILTERS, DEFAULT_WEIGHTS

LOW, HIGH = LatencySensitivity.LOW, LatencySensitivity.HIGH
NETWORK = NetworkModel(
    hub_of={"shanghai": "yrd", "chengdu": "cy", "qingyang": "gs", "beijing": "jjj"},
    hub_gbps={("yrd", "cy"): 10.0, ("yrd", "gs"): 10.0, ("jjj", "cy"): 10.0},
    intra_hub_gbps=20.0,
    off_hub_gbps=1.0,
    kwh_per_gb=0.01,
    carbon_g_per_kwh=500.0,
    cny_per_gb=0.5,
)
# Carbon alone decides: the transfer's carbon counts as much as the run's.
CARBON_ONLY = Policy(
    weights={s: {"CarbonIntensity": 1, "DataTransfer": 1} for s in LatencySensitivity}
)


def fleet():  # type: ignore[no-untyped-def]
    return state(
        cluster("shanghai", cpu=128, carbon=600, price=0.6, region=Region.EAST),
        cluster("chengdu", cpu=128, carbon=140, price=0.6, region=Region.WEST),
    )


def data_job(gib: float | None, hours: float, budget_s: float | None = None, **kw):  # type: ignore[no-untyped-def]
    # 100 cores × 10 W = 1 kW of IT power (no memory asked): 1.2 kWh/h in the west (PUE 1.2).
    data = None
    if gib is not None:
        data = JobData((DataInput("shanghai", gib),), NETWORK, hours, budget_s)
    return job("shanghai", cpu=100, memory_gi=0, data=data, **kw)


@pytest.mark.parametrize(
    ("gib", "hours", "budget_s", "where"),
    [
        # 10 h: running west saves 12.5 kWh × 600 − 12 kWh × 140 = 7500 − 1680 = 5820 g.
        # 500 GiB emit 500 × 5.369 = 2684 g moving: less than saved → west.
        # (scores: west 86 − 100 × 2684 / 12 kWh / 1000 = 86 − 22.4 vs east 40: west)
        (500, 10, None, "chengdu"),
        # 2000 GiB emit 10737 g, more than the 5820 saved → stays east.
        # (scores: 86 − 100 × 10737 / 12 / 1000 = 86 − 89.5 = −3.5 vs east 40: east)
        (2000, 10, None, "shanghai"),
        # The same 2000 GiB for a 100 h run: it saves 58200 g, far more than 10737 → west.
        (2000, 100, None, "chengdu"),
        # ... but 2000 GiB take 2000 × 0.859 = 1718 s (29 min) to move; with 20 min left before
        # the deadline's latest start, the transfer alone breaks it → east.
        (2000, 100, 1200, "shanghai"),
        # With 40 min left it fits → west again.
        (2000, 100, 2400, "chengdu"),
        # No data: today's decision, west on carbon (86 vs 40).
        (None, 10, None, "chengdu"),
    ],
)
def test_large_shanghai_data_stays_east_unless_moving_it_pays(
    gib: float | None, hours: float, budget_s: float | None, where: str
) -> None:
    result = Scheduler(CARBON_ONLY).schedule(data_job(gib, hours, budget_s), fleet())
    assert isinstance(result, Decision)
    assert result.cluster.name == where


def test_explain_shows_the_transfer_and_what_it_still_saves() -> None:
    result = Scheduler(CARBON_ONLY).schedule(data_job(500, 10), fleet())
    assert isinstance(result, Decision)
    words = " ".join(result.reasons())
    # 500 GiB × 0.859 s = 429 s = 7 min; 2.68 kg; 500 × 1.0737 GB × 0.5 CNY = 268 CNY;
    # saves 7500 − (1680 + 2684) = 3136 g against Shanghai.
    assert "moves 500 GiB from shanghai: 7 min, 2.68 kgCO2e, 268 CNY" in words
    assert "still saves 3.14 kgCO2e against running next to the data (shanghai)" in words


def test_data_already_at_the_cluster_costs_nothing() -> None:
    result = Scheduler(CARBON_ONLY).schedule(data_job(2000, 10), fleet())
    assert isinstance(result, Decision) and result.cluster.name == "shanghai"
    assert result.breakdown["DataTransfer"] == 100.0
    assert any("data already here (1.95 TiB)" in r for r in result.reasons())


@pytest.mark.parametrize(
    ("sensitivity", "gib", "rejected"),
    [
        # high: at most 60 s. 60 GiB take 51.5 s → both clusters; 100 GiB take 86 s → not west.
        (HIGH, 60, False),
        (HIGH, 100, True),
        # low: no class cap, no deadline: 100 TiB (24.4 h) still allowed.
        (LOW, 102400, False),
    ],
)
def test_the_latency_class_caps_the_transfer(
    sensitivity: LatencySensitivity, gib: float, rejected: bool
) -> None:
    s = fleet()
    result = Scheduler(CARBON_ONLY).schedule(
        data_job(gib, 10, sensitivity=sensitivity, max_latency_ms=100.0), s
    )
    verdicts = {v.cluster: v for v in result.evaluation.verdicts()}
    assert (verdicts["chengdu"].filter == "TransferTime") is rejected
    if rejected:
        assert verdicts["chengdu"].reason == (
            "moving 100 GiB from shanghai takes 1 min, more than the 1 min the high class cap "
            "allows"
        )


def test_an_unknown_place_leaves_the_job_pending_naming_it() -> None:
    data = JobData((DataInput("atlantis", 5),), NETWORK, 1.0)
    result = Scheduler().schedule(job("shanghai", data=data), fleet())
    assert isinstance(result, Diagnosis)
    assert result.reasons()["chengdu"] == (
        "TransferTime: spec.data: 'atlantis' is neither a known city nor a member cluster"
    )


def test_a_cluster_name_is_a_place() -> None:
    # Data "at chengdu" (the cluster's name, in Chengdu) makes Chengdu free and Shanghai pay.
    data = JobData((DataInput("chengdu", 2000),), NETWORK, 10.0)
    result = Scheduler(CARBON_ONLY).schedule(
        job("shanghai", cpu=100, memory_gi=0, data=data), fleet()
    )
    assert isinstance(result, Decision) and result.cluster.name == "chengdu"
    assert result.breakdown["DataTransfer"] == 100.0


def test_the_score_counts_the_transfer_like_the_run_with_price() -> None:
    # Default low weights: carbon 5, price 1, DataTransfer 6. 10 h, 100 GiB into the west:
    # Δg = 100 × 5.369 / 12 = 44.7 g/kWh, Δp = 100 × 1.0737 × 0.5 / 12 = 4.47 CNY/kWh;
    # drop = (5 × 100 × 44.7 / 1000 + 1 × 100 × 4.47 / 1) / 6 = (22.4 + 447) / 6 = 78.3.
    result = Scheduler().schedule(data_job(100, 10), fleet())
    assert isinstance(result, Decision)
    scores = {v.cluster: v.breakdown for v in result.evaluation.verdicts()}
    assert scores["chengdu"]["DataTransfer"] == pytest.approx(100 - 78.3, abs=0.1)
    assert scores["shanghai"]["DataTransfer"] == 100.0
    # Totals (weight 12): east (5×40 + 40 + 6×100)/12 = 70.0; west (5×86 + 40 + 6×21.7)/12
    # = 50.0: 224 CNY of transfer outweighs 5.8 kg of carbon at these weights → east.
    assert result.cluster.name == "shanghai"


def test_policy_args_and_weights_are_checked() -> None:
    with pytest.raises(ValueError, match="high_s must be ≥ 0"):
        Scheduler(Policy(plugin_args={"TransferTime": {"high_s": -1}}))
    assert "TransferTime" in DEFAULT_FILTERS
    for s in LatencySensitivity:  # the transfer weighs as much as the run
        w = DEFAULT_WEIGHTS[s]
        assert w["DataTransfer"] == w["CarbonIntensity"] + w["PowerPrice"]


# -- properties ----------------------------------------------------------------------------

WITHOUT_DATA_PLUGINS = Policy(
    filters=[f for f in DEFAULT_FILTERS if f != "TransferTime"],
    weights={
        s: {k: v for k, v in w.items() if k != "DataTransfer"} for s, w in DEFAULT_WEIGHTS.items()
    },
)
carbons = st.floats(100, 900)
prices = st.floats(0.2, 0.9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(carbons, prices), min_size=4, max_size=4),
    st.sampled_from(list(LatencySensitivity)),
    st.sampled_from(["beijing", "shanghai", "chengdu"]),
)
def test_a_job_without_data_is_decided_as_before(
    power: list[tuple[float, float]], sensitivity: LatencySensitivity, origin: str
) -> None:
    places = ["shanghai", "chengdu", "qingyang", "beijing"]
    s = state(*(cluster(p, carbon=c, price=pr) for p, (c, pr) in zip(places, power, strict=True)))
    request = job(origin, sensitivity=sensitivity, max_latency_ms=100.0)
    now, before = (
        Scheduler().schedule(request, s),
        Scheduler(WITHOUT_DATA_PLUGINS).schedule(request, s),
    )
    assert isinstance(now, Decision) and isinstance(before, Decision)
    assert (now.cluster.name, now.score, now.breakdown) == (
        before.cluster.name,
        before.score,
        before.breakdown,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(carbons, prices), min_size=4, max_size=4),
    st.floats(1, 5000),
    st.floats(1.01, 20),
    st.floats(0.5, 50),
)
def test_more_data_never_makes_a_farther_cluster_more_attractive(
    power: list[tuple[float, float]], gib: float, factor: float, hours: float
) -> None:
    # Same region everywhere (one PUE), so "farther" is simply "dearer to move to".
    places = ["shanghai", "chengdu", "qingyang", "beijing"]
    s = state(*(cluster(p, carbon=c, price=pr) for p, (c, pr) in zip(places, power, strict=True)))
    scheduler = Scheduler()

    def totals(size: float):  # type: ignore[no-untyped-def]
        data = JobData((DataInput("shanghai", size),), NETWORK, hours)
        result = scheduler.schedule(job("shanghai", data=data), s)
        assert isinstance(result, Decision)
        return result.evaluation.total

    small, large = totals(gib), totals(gib * factor)
    # Per GiB, Shanghai (free) ≤ Chengdu = Qingyang (10 Gbps, 0.5 CNY) ≤ Beijing (off the
    # toy table's pairs: 1 Gbps, 0.5 CNY).
    near_to_far = [s.index[p] for p in ("shanghai", "chengdu", "beijing")]
    for near, far in itertools.pairwise(near_to_far):
        assert large[far] - large[near] <= small[far] - small[near] + 1e-9


# -- the API ---------------------------------------------------------------------------------

CORPUS = Path(__file__).parents[2] / "data" / "bad" / "computejobs.yaml"
DATA_ROWS = [r for r in yaml.safe_load(CORPUS.read_text()) if "spec.data" in r.get("edits", {})]


def base_manifest() -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {
            "name": "j",
            "namespace": "team-a",
            "annotations": {"computegrid.io/origin": "shanghai"},
        },
        "spec": {
            "resources": {"cpu": "1"},
            "template": {"spec": {"containers": [{"name": "m", "image": "x"}]}},
        },
    }


@pytest.mark.parametrize("row", DATA_ROWS, ids=[r["why"] for r in DATA_ROWS])
def test_bad_data_is_refused_naming_the_field(row: dict) -> None:  # type: ignore[type-arg]
    manifest = base_manifest()
    manifest["spec"]["data"] = row["edits"]["spec.data"]
    if row.get("accept"):
        parse_job(manifest)
        return
    with pytest.raises(InvalidJob) as caught:
        parse_job(manifest)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("spec.data"), message
    assert row["field"].split(".")[-1] in message


def test_the_crd_bounds_size_the_way_kubernetes_reads_them() -> None:
    # The API server takes exclusiveMinimum as a boolean beside minimum (OpenAPI v3.0); a
    # number there (JSON Schema 2020, what pydantic's gt writes) refuses the whole CRD.
    crd = yaml.safe_load(
        (CORPUS.parents[2].parent / "crds" / "computegrid.io_computejobs.yaml").read_text()
    )
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    size = spec["properties"]["data"]["items"]["properties"]["sizeGiB"]
    assert (size["minimum"], size["exclusiveMinimum"], size["maximum"]) == (0, True, 2**20)
    assert spec["properties"]["data"]["maxItems"] == 16
