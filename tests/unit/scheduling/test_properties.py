"""Properties of the core over generated fleets and jobs (hypothesis)."""

from __future__ import annotations

from builders import CITIES, LATENCY, cluster, job
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.api import ComputeType, LatencySensitivity, Region
from computegrid.scheduling import Decision, Diagnosis, FleetState, Scheduler, schedule_many

cities = st.sampled_from(sorted(CITIES))
types = st.sampled_from(list(ComputeType))


@st.composite
def clusters(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    count = draw(st.integers(min_value=1, max_value=6))
    out = []
    for i in range(count):
        out.append(
            cluster(
                draw(cities),
                name=f"c{i}",
                cpu=draw(st.sampled_from([8.0, 32.0, 64.0])),
                gpu=draw(st.sampled_from([0.0, 4.0, 8.0])),
                nodes=draw(st.integers(min_value=1, max_value=3)),
                used_cpu=draw(st.sampled_from([0.0, 4.0, 8.0])),
                carbon=draw(st.floats(min_value=100, max_value=800)),
                renewable=draw(st.floats(min_value=0, max_value=1)),
                price=draw(st.floats(min_value=0.2, max_value=0.8)),
                region=draw(st.sampled_from(list(Region))),
                ready=draw(st.booleans()),
                types=tuple(draw(st.sets(types, min_size=1))),
            )
        )
    return out


@st.composite
def jobs(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    return job(
        draw(cities),
        cpu=draw(st.sampled_from([1.0, 4.0, 16.0])),
        gpu=draw(st.sampled_from([0.0, 1.0, 4.0])),
        pods=draw(st.integers(min_value=1, max_value=6)),
        kind=draw(types),
        sensitivity=draw(st.sampled_from(list(LatencySensitivity))),
        allowed_regions=draw(
            st.none() | st.sets(st.sampled_from(list(Region)), min_size=1).map(frozenset)
        ),
    )


@settings(max_examples=150, deadline=None)
@given(clusters(), jobs())
def test_a_decision_never_violates_a_filter(snapshots: list, request) -> None:  # type: ignore[no-untyped-def,type-arg]
    state = FleetState(snapshots, LATENCY)
    result = Scheduler().schedule(request, state)
    if isinstance(result, Diagnosis):
        assert len(result.reasons()) == len(snapshots)  # every cluster has its reason
        return
    chosen = result.cluster
    assert chosen.ready
    assert request.compute_type in chosen.compute_types
    budget = request.latency_budget_ms
    assert budget is None or LATENCY.rtt_ms(request.origin, chosen.location) <= budget
    assert request.allowed_regions is None or chosen.region in request.allowed_regions
    # Reserving must succeed: the fit check promised room for every pod.
    placed = state.reserve(result.index, request)
    assert sum(placed.values()) == request.parallelism
    assert (state.node_free >= -1e-9).all()


@settings(max_examples=100, deadline=None)
@given(clusters(), jobs(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_clusters(snapshots: list, request, rng) -> None:  # type: ignore[no-untyped-def,type-arg]
    shuffled = list(snapshots)
    rng.shuffle(shuffled)
    first = Scheduler().schedule(request, FleetState(snapshots, LATENCY))
    second = Scheduler().schedule(request, FleetState(shuffled, LATENCY))
    assert type(first) is type(second)
    if isinstance(first, Decision) and isinstance(second, Decision):
        assert first.cluster.name == second.cluster.name
        assert first.score == second.score
    else:
        assert first.reasons() == second.reasons()  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(clusters(), st.lists(jobs(), min_size=1, max_size=15))
def test_schedule_many_never_overcommits(snapshots: list, requests: list) -> None:  # type: ignore[type-arg]
    state = FleetState(snapshots, LATENCY)
    results = schedule_many(requests, state)
    assert len(results) == len(requests)
    assert (state.node_free >= -1e-9).all()
    placed = sum(isinstance(r, Decision) for r in results)
    used_pods = (
        state.cluster_alloc[:, state.resource_index["pods"]].sum()
        - state.cluster_free[:, state.resource_index["pods"]].sum()
    )
    # Every pod slot taken belongs to a placed job: the books balance.
    assert used_pods == sum(r.job.parallelism for r in results if isinstance(r, Decision))
    assert placed <= len(requests)
