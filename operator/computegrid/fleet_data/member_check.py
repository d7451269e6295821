"""What the reference data can say about a MemberCluster before the scheduler ever sees it.

The CRD schema checks shapes; only the city table knows whether ``spec.location`` is a place.
The operator calls ``member_problem`` when a MemberCluster is created or changed and, on a
problem, sets ``Ready=False`` with the message instead of letting the cluster into the fleet
(the scheduler would filter it anyway: see the ``KnownLocation`` filter).
"""

from __future__ import annotations

from computegrid.api import MemberClusterSpec
from computegrid.fleet_data.cities import UnknownCityError, resolve_city
from computegrid.fleet_data.national import load_latency_model


def member_problem(spec: MemberClusterSpec) -> str | None:
    """A one-line reason the member cannot take part, naming the field; None if it can."""
    model = load_latency_model()
    problem = _city_problem("spec.location", spec.location)
    if problem is None and not model.knows(spec.location):
        problem = f"spec.location: {spec.location!r} has no coordinates in the latency model"
    for i, city in enumerate(spec.paired_with):
        problem = problem or _city_problem(f"spec.pairedWith[{i}]", city)
    return problem


def _city_problem(field: str, written: str) -> str | None:
    """Why ``written`` is not a city key; the key is what the latency model is indexed by."""
    try:
        key = resolve_city(written).key
    except UnknownCityError as exc:
        return f"{field}: {exc}"
    if key != written:
        return f"{field}: write the city key {key!r}, not {written!r}"
    return None
