"""fleet.Capacity: a probe that moved only pods' requests refreshes its member in place, and
the state is then exactly what compiling from scratch with the outstanding reservations
gives; anything else compiles anew."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.fleet.capacity import Capacity
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import ClusterSnapshot, Decision, FleetState, Scheduler
from computegrid.scheduling.synthetic import reprobed, synthetic_fleet, synthetic_jobs

CITIES = ["beijing", "shanghai", "guiyang", "zhongwei"]
LATENCY = load_latency_model()


def compiled_from_scratch(snapshots: list[ClusterSnapshot], capacity: Capacity) -> FleetState:
    """What a full compile with every outstanding reservation re-applied gives."""
    state = FleetState(snapshots, LATENCY)
    for reservation in capacity.reservations.values():
        index = state.index[reservation.cluster]
        try:
            state.reserve(index, reservation.request)
        except ValueError:
            continue
    return state


def assert_same_capacity(a: FleetState, b: FleetState) -> None:
    assert a.names == b.names
    order = [b.node_row[name] for name in a.node_names]
    np.testing.assert_allclose(a.node_free, b.node_free[order])
    np.testing.assert_allclose(a.cluster_free, b.cluster_free)


def place(capacity: Capacity, state: FleetState, jobs: list, start: int) -> int:
    placed = 0
    for k, job in enumerate(jobs):
        result = Scheduler().schedule(job, state)
        if isinstance(result, Decision):
            capacity.reserve(f"j{start + k}", result.cluster.name, job)
            placed += 1
    return placed


def play(seed: int, steps: list[tuple[str, int]]) -> tuple[Capacity, list[ClusterSnapshot], int]:
    """Decisions ("place" n jobs), request-only probes of one member and releases of one
    held promise, in the order given; the capacity, the snapshots and the last generation."""
    snapshots = synthetic_fleet(4, CITIES, nodes=5, seed=seed)
    capacity = Capacity(LATENCY, ttl=1e9)
    generation = 1
    jobs = synthetic_jobs(80, CITIES, seed=seed + 1)
    made = 0
    for kind, value in steps:
        state = capacity.state(generation, lambda: snapshots)
        if kind == "place":
            place(capacity, state, jobs[made : made + value], made)
            made += value
        elif kind == "release":
            if capacity.reservations:
                held = sorted(capacity.reservations)
                capacity.release(held[value % len(held)])
        else:
            member = value % len(snapshots)
            snapshots[member] = reprobed(snapshots[member], value)
            generation += 1
    return capacity, snapshots, generation


def test_a_probe_of_requests_refreshes_one_member_and_matches_a_full_compile() -> None:
    snapshots = synthetic_fleet(4, CITIES, nodes=6, seed=3)
    capacity = Capacity(LATENCY, ttl=1e9)
    state = capacity.state(1, lambda: snapshots)
    assert place(capacity, state, synthetic_jobs(40, CITIES, seed=4), 0) > 10
    snapshots[2] = reprobed(snapshots[2], 5)
    after = capacity.state(2, lambda: snapshots)
    assert after is state  # refreshed in place, not compiled
    assert (capacity.compiled, capacity.refreshed) == (1, 1)
    assert after.clusters[after.index[snapshots[2].name]] is snapshots[2]
    assert_same_capacity(after, compiled_from_scratch(snapshots, capacity))


@pytest.mark.parametrize(
    "change",
    [
        lambda s: replace(s, ready=False, not_ready_reason="probe failed"),
        lambda s: replace(s, power=replace(s.power, carbon_intensity=1.0)),
        lambda s: replace(s, nodes=s.nodes[:-1]),
        lambda s: replace(
            s, nodes=(replace(s.nodes[0], allocatable={"cpu": 1.0, "pods": 1.0}), *s.nodes[1:])
        ),
    ],
    ids=["readiness", "power", "node-removed", "allocatable"],
)
def test_any_change_but_requests_compiles_anew(change) -> None:  # type: ignore[no-untyped-def]
    snapshots = synthetic_fleet(3, CITIES, nodes=4, seed=1)
    capacity = Capacity(LATENCY, ttl=1e9)
    first = capacity.state(1, lambda: snapshots)
    place(capacity, first, synthetic_jobs(10, CITIES, seed=2), 0)
    snapshots[1] = change(snapshots[1])
    after = capacity.state(2, lambda: snapshots)
    assert after is not first
    assert (capacity.compiled, capacity.refreshed) == (2, 0)
    assert_same_capacity(after, compiled_from_scratch(snapshots, capacity))


def test_a_member_added_compiles_anew() -> None:
    snapshots = synthetic_fleet(3, CITIES, nodes=4, seed=1)
    capacity = Capacity(LATENCY, ttl=1e9)
    capacity.state(1, lambda: snapshots[:2])
    capacity.state(2, lambda: snapshots)
    assert capacity.compiled == 2


def test_a_released_promise_gives_its_capacity_back_at_once() -> None:
    """Even while the fleet generation stands still: a short job whose pods came and went
    between two probes leaves the member's free capacity as it was, so no probe moves the
    generation, and its capacity must not stay held until the member next changes."""
    snapshots = synthetic_fleet(2, CITIES, nodes=4, seed=1)
    capacity = Capacity(LATENCY, ttl=1e9)
    state = capacity.state(1, lambda: snapshots)
    free_before = state.node_free.copy()
    job = synthetic_jobs(1, CITIES, seed=2)[0]
    result = Scheduler().schedule(job, state)
    assert isinstance(result, Decision)
    capacity.reserve("a", result.cluster.name, job)
    assert (state.node_free < free_before).any()
    freed = capacity.freed
    capacity.release("a")
    assert capacity.freed == freed + 1  # jobs refused for want of room may look again
    capacity.release("a")
    assert capacity.freed == freed + 1  # nothing was held the second time
    assert capacity.state(1, lambda: snapshots) is state
    np.testing.assert_allclose(state.node_free, free_before)


def test_a_settled_promise_is_not_held_twice_when_free_looks_unmoved() -> None:
    """The probe counted the job's pods but another job's equal pods left at the same time:
    free capacity is unchanged (no new generation), the promise must still end."""
    snapshots = synthetic_fleet(2, CITIES, nodes=4, seed=1)
    capacity = Capacity(LATENCY, ttl=1e9)
    state = capacity.state(1, lambda: snapshots)
    free_before = state.node_free.copy()
    job = synthetic_jobs(1, CITIES, seed=2)[0]
    result = Scheduler().schedule(job, state)
    assert isinstance(result, Decision)
    capacity.reserve("a", result.cluster.name, job)
    capacity.settle("other-cluster", ["a"])  # a probe of another member: not this promise
    assert "a" in capacity.reservations
    capacity.settle(result.cluster.name, ["a"])
    assert "a" not in capacity.reservations
    np.testing.assert_allclose(capacity.state(1, lambda: snapshots).node_free, free_before)


def test_an_expired_promise_gives_its_capacity_back_without_a_probe() -> None:
    snapshots = synthetic_fleet(2, CITIES, nodes=4, seed=1)
    capacity = Capacity(LATENCY, ttl=60.0)
    state = capacity.state(1, lambda: snapshots)
    free_before = state.node_free.copy()
    job = synthetic_jobs(1, CITIES, seed=2)[0]
    result = Scheduler().schedule(job, state)
    assert isinstance(result, Decision)
    now = time.monotonic()
    capacity.reserve("b", result.cluster.name, job, made=now - 30.0)
    capacity.reserve("a", result.cluster.name, job, made=now - 61.0)
    assert capacity.next_expiry == pytest.approx(now - 1.0)  # the oldest: due already
    assert (state.node_free < free_before).any()
    freed = capacity.freed
    assert capacity.state(1, lambda: snapshots) is state
    assert set(capacity.reservations) == {"b"} and capacity.freed == freed + 1
    assert capacity.next_expiry == pytest.approx(now + 30.0)  # when the placer looks again
    capacity.release("b")
    np.testing.assert_allclose(state.node_free, free_before)
    capacity._expire()  # as at that time: nothing is held, so nothing is due
    assert capacity.next_expiry == math.inf


def test_the_same_generation_returns_the_state_without_asking_for_snapshots() -> None:
    snapshots = synthetic_fleet(2, CITIES, nodes=2, seed=1)
    capacity = Capacity(LATENCY)
    state = capacity.state(7, lambda: snapshots)

    def must_not_be_called() -> list[ClusterSnapshot]:
        raise AssertionError("snapshots read although the generation did not move")

    assert capacity.state(7, must_not_be_called) is state


def steps_of(*kinds: str, max_size: int) -> st.SearchStrategy[list[tuple[str, int]]]:
    """Steps for ``play``: "place" 1-6 jobs, "probe" or "release" by a number that picks."""
    values = {"place": st.integers(1, 6), "probe": st.integers(0, 1_000)}
    values["release"] = values["probe"]
    return st.lists(
        st.one_of(*(st.tuples(st.just(kind), values[kind]) for kind in kinds)),
        min_size=1,
        max_size=max_size,
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), steps=steps_of("place", "probe", max_size=12))
def test_refreshing_in_place_always_equals_compiling_from_scratch(
    seed: int, steps: list[tuple[str, int]]
) -> None:
    """Any interleaving of decisions and request-only probes (no promise released): the
    state kept in place equals the state compiled from the same snapshots and promises."""
    capacity, snapshots, generation = play(seed, steps)
    state = capacity.state(generation, lambda: snapshots)
    assert capacity.compiled == 1
    assert_same_capacity(state, compiled_from_scratch(snapshots, capacity))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), steps=steps_of("place", "probe", "release", max_size=16))
def test_releases_between_probes_keep_the_fleet_equal_to_a_compile(
    seed: int, steps: list[tuple[str, int]]
) -> None:
    """Decisions, request-only probes and releases in any order: every member's free
    capacity equals a compile from the same snapshots and the promises still held (nodes
    may differ: a release leaves later promises on the nodes they were packed on), no node
    goes below zero or above its allocatable, and with every promise released the nodes are
    exactly the snapshots'."""
    capacity, snapshots, generation = play(seed, steps)
    state = capacity.state(generation, lambda: snapshots)
    fresh = compiled_from_scratch(snapshots, capacity)
    np.testing.assert_allclose(state.cluster_free, fresh.cluster_free)
    assert (state.node_free >= -1e-9).all() and (state.node_free <= state.node_alloc + 1e-9).all()
    for uid in list(capacity.reservations):
        capacity.release(uid)
    assert_same_capacity(
        capacity.state(generation, lambda: snapshots), FleetState(snapshots, LATENCY)
    )
