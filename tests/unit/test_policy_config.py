"""The scheduling policy from ConfigMap text: what is taken, and every refusal names its field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from computegrid.api.common import LatencySensitivity
from computegrid.fleet_data.policy_file import (
    PolicyKeeper,
    PolicyOutcome,
    load_policy,
    read_policy_file,
)
from computegrid.scheduling import DEFAULT_WEIGHTS, Policy, Scheduler
from computegrid.scheduling.plugins.headroom import CriticalHeadroom
from computegrid.scheduling.policy_config import PolicyError, policy_from_mapping


@pytest.mark.parametrize("text", ["", "  \n", "{}", "# only a comment\n{}\n"])
def test_empty_is_the_built_in_policy(text: str) -> None:
    assert load_policy(text) == Policy()


def test_a_class_left_out_keeps_its_weights_a_given_class_is_taken_as_written() -> None:
    policy = load_policy("weights:\n  low: {CarbonIntensity: 2, PowerPrice: 7}\n")
    assert policy.weights[LatencySensitivity.LOW] == {"CarbonIntensity": 2, "PowerPrice": 7}
    for kept in (LatencySensitivity.MEDIUM, LatencySensitivity.HIGH):
        assert policy.weights[kept] == DEFAULT_WEIGHTS[kept]
    # ... and the scheduler runs exactly those two for low work.
    low = Scheduler(policy).scores[LatencySensitivity.LOW]
    assert sorted((p.name, w) for p, w in low) == [("CarbonIntensity", 2.0), ("PowerPrice", 7.0)]


def test_headroom_reserve_and_classes_reach_the_plugin() -> None:
    policy = load_policy(
        "filters: [ClusterReady, ResourcesFit, CriticalHeadroom]\n"
        "pluginArgs:\n  CriticalHeadroom: {reserve: 0.1, appliesTo: [low, medium]}\n"
        "alternatives: 5\n"
    )
    scheduler = Scheduler(policy)
    assert [f.name for f in scheduler.filters] == [
        "ClusterReady",
        "ResourcesFit",
        "CriticalHeadroom",
    ]
    [headroom] = [f for f in scheduler.filters if isinstance(f, CriticalHeadroom)]
    assert headroom.reserve == 0.1
    assert headroom.applies_to == {LatencySensitivity.LOW, LatencySensitivity.MEDIUM}
    assert policy.alternatives == 5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("weights: {low: {Carbon: 1}}", "policy.yaml: weights.low.Carbon: unknown score plugin"),
        (
            "weights: {low: {CarbonIntensity: -1}}",
            "policy.yaml: weights.low.CarbonIntensity must be ≥ 0",
        ),
        (
            "weights: {low: {CarbonIntensity: 0}}",
            "policy.yaml: weights.low: at least one weight must be > 0",
        ),
        ("weights: {urgent: {Latency: 1}}", "policy.yaml: weights.urgent: unknown latency class"),
        ("weights: [1, 2]", "policy.yaml: weights: expected a mapping"),
        ("filters: [ClusterReady, Nope]", "policy.yaml: filters: unknown filter plugin 'Nope'"),
        (
            "filters: [ClusterReady, ClusterReady]",
            "policy.yaml: filters: a filter plugin is listed twice",
        ),
        (
            "pluginArgs: {CriticalHeadroom: {reserve: 1.5}}",
            "policy.yaml: pluginArgs.CriticalHeadroom: CriticalHeadroom.reserve must be in [0, 1)",
        ),
        (
            "pluginArgs: {CriticalHeadroom: {reserve: lots}}",
            "policy.yaml: pluginArgs.CriticalHeadroom: CriticalHeadroom.reserve must be a number",
        ),
        (
            "pluginArgs: {CriticalHeadroom: {appliesTo: [urgent]}}",
            "policy.yaml: pluginArgs.CriticalHeadroom: CriticalHeadroom.applies_to must list latency classes",
        ),
        (
            "pluginArgs: {CriticalHeadroom: {reserv: 0.1}}",
            "policy.yaml: pluginArgs.CriticalHeadroom: unknown argument 'reserv'",
        ),
        (
            "pluginArgs: {CriticalHeadroom: {static: true}}",
            "policy.yaml: pluginArgs.CriticalHeadroom: 'static' is not an argument",
        ),
        (
            "pluginArgs: {Headroom: {reserve: 0.1}}",
            "policy.yaml: pluginArgs.Headroom: unknown plugin",
        ),
        (
            "pluginArgs: {CriticalHeadroom: 0.1}",
            "policy.yaml: pluginArgs.CriticalHeadroom: expected a mapping",
        ),
        ("alternatives: 50", "policy.yaml: alternatives: Input should be less than or equal to 20"),
        ("weight: {low: {Latency: 1}}", "policy.yaml: weight: Extra inputs are not permitted"),
        ("- filters", "policy.yaml: expected a mapping"),
        ("filters: [a\n", "policy.yaml: malformed YAML"),
        ("a: &x 1\nb: *x\n", "policy.yaml: YAML aliases"),
        ("{}\n---\n{}\n", "policy.yaml: expected one YAML document, got 2"),
    ],
)
def test_bad_policy_is_refused_naming_the_field(text: str, error: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert str(caught.value).startswith(error), str(caught.value)
    assert "\n" not in str(caught.value)


def test_mapping_of_the_wrong_type_and_none() -> None:
    assert policy_from_mapping(None) == Policy()
    with pytest.raises(PolicyError, match=r"^cm: expected a mapping"):
        policy_from_mapping(["filters"], "cm")  # type: ignore[arg-type]


def test_policy_file(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("alternatives: 1\n", encoding="utf-8")
    assert read_policy_file(good).alternatives == 1
    with pytest.raises(
        PolicyError, match="^" + re.escape(f"{tmp_path / 'missing.yaml'}: cannot read")
    ):
        read_policy_file(tmp_path / "missing.yaml")


def test_keeper_swaps_on_a_good_policy_and_keeps_the_old_on_a_bad_one() -> None:
    keeper = PolicyKeeper()
    assert keeper.offer("{}") == PolicyOutcome(Policy(), changed=False)
    good = keeper.offer("alternatives: 7\n", "cg-system/cg-policy")
    assert good.changed and good.error is None and keeper.policy.alternatives == 7
    bad = keeper.offer("pluginArgs: {CriticalHeadroom: {reserve: 2}}", "cg-system/cg-policy")
    assert not bad.changed and keeper.policy.alternatives == 7 and bad.policy is keeper.policy
    assert bad.error is not None
    assert bad.error.startswith("cg-system/cg-policy: pluginArgs.CriticalHeadroom: ")
    assert not keeper.offer("alternatives: 7\n").changed  # the same again: no change
    gone = keeper.offer(None)  # the ConfigMap was deleted: the built-in policy
    assert gone.changed and keeper.policy == Policy()
