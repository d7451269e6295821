"""member_problem: a MemberCluster the latency model cannot place is named, not a KeyError."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from computegrid.api import MemberClusterSpec
from computegrid.fleet_data import load_latency_model, load_national_fleet, member_problem


def spec(location: str, paired: tuple[str, ...] = ()) -> MemberClusterSpec:
    """Built without validation: the CRD pattern refuses some of these before the operator."""
    return MemberClusterSpec.model_construct(
        **{
            "hub": "gansu",
            "region": "west",
            "location": location,
            "kubeconfigSecretRef": {"name": "gansu"},
            "paired_with": list(paired),
        }
    )


@pytest.mark.parametrize(
    ("location", "paired", "problem"),
    [
        ("qingyang", ("shanghai", "beijing"), None),
        ("atlantis", (), "spec.location: unknown city 'atlantis'"),
        ("Qingyang", (), "spec.location: write the city key 'qingyang', not 'Qingyang'"),
        ("庆阳", (), "spec.location: write the city key 'qingyang', not '庆阳'"),
        ("qingyang", ("shanghai", "mars"), "spec.pairedWith[1]: unknown city 'mars'"),
    ],
)
def test_member_problem(location: str, paired: tuple[str, ...], problem: str | None) -> None:
    found = member_problem(spec(location, paired))
    assert found == problem or (
        problem is not None and found is not None and found.startswith(problem)
    )


def test_every_cluster_of_the_national_fleet_passes() -> None:
    model = load_latency_model()
    for cluster in load_national_fleet().clusters:
        assert model.knows(cluster.location)
        assert member_problem(spec(cluster.location)) is None


@pytest.mark.parametrize("location", ["Qingyang", "庆阳", "atlantis city", ""])
def test_the_crd_pattern_refuses_what_is_not_a_city_key(location: str) -> None:
    with pytest.raises(ValidationError, match="location"):
        MemberClusterSpec.model_validate(
            {
                "hub": "g",
                "region": "west",
                "location": location,
                "kubeconfigSecretRef": {"name": "g"},
            }
        )
