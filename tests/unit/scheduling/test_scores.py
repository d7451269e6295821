"""Score plugins' math and the weighted sum, with the arithmetic worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from builders import cluster, job, state

from computegrid.api import LatencySensitivity
from computegrid.scheduling import Decision, Policy, Scheduler
from computegrid.scheduling.plugins.carbon import carbon_score
from computegrid.scheduling.plugins.latency import latency_score
from computegrid.scheduling.plugins.least_allocated import least_allocated_score
from computegrid.scheduling.plugins.pairing import pairing_score
from computegrid.scheduling.plugins.price import price_score
from computegrid.scheduling.plugins.renewable import renewable_score


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (carbon_score, (140.4,), 85.96),  # 100 x (1 - 140.4/1000)
        (carbon_score, (725.2,), 27.48),  # 100 x (1 - 725.2/1000)
        (carbon_score, (1200.0,), 0.0),  # beyond the worst: clamped
        (renewable_score, (0.866,), 86.6),
        (renewable_score, (1.5,), 100.0),  # clamped
        (price_score, (0.35,), 65.0),  # 100 x (1 - 0.35/1.0)
        (price_score, (0.60,), 40.0),
        (latency_score, (2.3, 5.0), 54.0),  # 100 x (1 - 2.3/5)
        (latency_score, (13.6, 20.0), 32.0),  # 100 x (1 - 13.6/20)
        (latency_score, (30.0, 20.0), 0.0),  # beyond the scale: clamped
        (least_allocated_score, (64.0, 1 / 256), 25.0),  # CPU 64 of 256 left → 25
        (least_allocated_score, (-8.0, 1 / 256), 0.0),  # overcommitted: clamped
        (pairing_score, (True,), 100.0),
        (pairing_score, (False,), 0.0),
    ],
)
def test_score_math(fn: object, args: tuple[object, ...], expected: float) -> None:
    assert float(fn(*args)) == pytest.approx(expected)  # type: ignore[operator]


def test_low_jobs_follow_carbon_and_price() -> None:
    # Low weights: carbon 5, price 1 (sum 6; renewable, room, latency and pairing are 0).
    # green:  carbon 86 (140 g), price 40 (0.60)
    # cheap:  carbon 40 (600 g), price 70 (0.30)
    # green = (5*86 + 40) / 6 = 470/6 = 78.33; cheap = (5*40 + 70) / 6 = 270/6 = 45.00
    fleet = state(
        cluster("chengdu", name="green", carbon=140, renewable=0.8, price=0.60),
        cluster("zhangjiakou", name="cheap", carbon=600, renewable=0.2, price=0.30),
    )
    result = Scheduler().schedule(job("shanghai"), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "green"
    assert result.breakdown["CarbonIntensity"] == 86.0
    assert result.alternatives()[0][0] == "cheap"
    assert result.score == pytest.approx(78.33, abs=0.01)
    assert result.alternatives()[0][1] == pytest.approx(45.00, abs=0.01)


def test_high_jobs_follow_latency() -> None:
    # Both within 5 ms of Beijing (2.3 and 2.0 ms); the dirtier one is nearer... no: beijing
    # itself is 2.0 ms (intra-city), zhangjiakou 2.3 ms. High weights: latency 6, carbon 1,
    # price 1, room 1. near = 60 x 6 = 360 vs 54 x 6 = 324: 36 points of latency outweigh a
    # 100 g/kWh carbon difference (10 points x 1).
    fleet = state(
        cluster("beijing", name="city", carbon=600),
        cluster("zhangjiakou", name="suburb", carbon=500),
    )
    result = Scheduler().schedule(job(sensitivity=LatencySensitivity.HIGH), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "city"
    assert result.breakdown["Latency"] == pytest.approx(60.0)  # 100 x (1 - 2.0/5)


def test_pairing_bonus_breaks_a_tie() -> None:
    # Medium weights give HubPairing 1 (of 11): b-paired gets 100/11 = 9.09 points more.
    # Beijing-Qingyang is 13.6 ms, inside the medium 20 ms budget.
    same = dict(carbon=500.0, renewable=0.4, price=0.4)
    fleet = state(
        cluster("qingyang", name="a-unpaired", **same),  # type: ignore[arg-type]
        cluster("qingyang", name="b-paired", paired=frozenset({"beijing"}), **same),  # type: ignore[arg-type]
    )
    result = Scheduler().schedule(job("beijing", sensitivity=LatencySensitivity.MEDIUM), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "b-paired"
    assert result.score - result.alternatives()[0][1] == pytest.approx(100 / 11, abs=0.01)
    # Low weights give HubPairing 0 (tuned): a true tie, broken by name.
    low = Scheduler().schedule(job("beijing"), fleet)
    assert isinstance(low, Decision)
    assert low.cluster.name == "a-unpaired"


def test_ties_are_broken_by_name() -> None:
    fleet = state(cluster("qingyang", name="zeta"), cluster("qingyang", name="alpha"))
    result = Scheduler().schedule(job(), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "alpha"


def test_weights_are_configuration() -> None:
    # Only price counts: the cheap cluster wins although it is dirtier.
    policy = Policy.model_validate(
        {"weights": {s.value: {"PowerPrice": 1} for s in LatencySensitivity}}
    )
    fleet = state(
        cluster("chengdu", name="green", carbon=140, price=0.60),
        cluster("zhangjiakou", name="cheap", carbon=600, price=0.30),
    )
    result = Scheduler(policy).schedule(job(), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "cheap"
    assert result.score == pytest.approx(70.0)
    assert list(result.breakdown) == ["PowerPrice"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"filters": ["Nope"]}, "unknown filter plugin 'Nope'"),
        ({"weights": {"low": {"Carbon": 1}}}, "weights for latency class 'high' are missing"),
        (
            {"weights": {s: {"Carbon": 1} for s in ("low", "medium", "high")}},
            "unknown score plugin 'Carbon'",
        ),
        (
            {"weights": {s: {"PowerPrice": 0} for s in ("low", "medium", "high")}},
            "at least one weight must be > 0",
        ),
        ({"pluginArgs": {"Nope": {}}}, "pluginArgs names unknown plugin 'Nope'"),
        ({"alternatives": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_policy_names_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.model_validate(raw)


def test_savings_against_the_nearest_cluster() -> None:
    # 1 pod x (4 cores x 10 W + 8 GiB x 0.375 W) = 43 W IT; both west: PUE 1.2 → 51.6 W.
    # near (zhangjiakou, 2.3 ms from beijing): 600 g/kWh x 0.0516 kW = 30.96 g/h.
    # far (chengdu): 140 g/kWh x 0.0516 = 7.224 g/h. Saved: 23.736 g/h.
    fleet = state(
        cluster("zhangjiakou", name="near", carbon=600, price=0.6),
        cluster("chengdu", name="far", carbon=140, price=0.4),
    )
    result = Scheduler().schedule(job("beijing"), fleet)
    assert isinstance(result, Decision)
    assert result.cluster.name == "far"
    nearest, grams, cny = result.savings_per_hour()
    assert nearest == "near"
    assert grams == pytest.approx(23.736)
    assert cny == pytest.approx(0.0516 * 0.2)


def test_scores_stay_in_range_even_for_odd_inputs() -> None:
    fleet = state(cluster("qingyang", carbon=-5, renewable=2.0, price=-1))
    result = Scheduler().schedule(job(), fleet)
    assert isinstance(result, Decision)
    assert all(0.0 <= v <= 100.0 for v in result.breakdown.values())
    assert 0.0 <= result.score <= 100.0
    assert np.isfinite(result.score)


def test_reasons_lead_with_what_lifted_the_cluster_most() -> None:
    # High class from Beijing to Zhangjiakou (2.3 ms): Latency 54 x 6 = 324 outweighs
    # LeastAllocated ~95 x 1, PowerPrice 50 x 1 and CarbonIntensity 50 x 1.
    fleet = state(cluster("zhangjiakou", carbon=500, price=0.5))
    result = Scheduler().schedule(job(sensitivity=LatencySensitivity.HIGH), fleet)
    assert isinstance(result, Decision)
    reasons = result.reasons()
    assert reasons[0] == "Latency 54/100 x6 (2.3 ms RTT)"
    assert reasons[1].startswith("LeastAllocated 95/100 x1")
    assert len(reasons) == 4  # the four plugins weighted in the high class; nothing filtered out
