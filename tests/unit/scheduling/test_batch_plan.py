"""plan_batch: the joint time-expanded assignment of waiting jobs (scheduling/batch_plan.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computegrid.scheduling.batch_plan import BatchJob, occupied_slots, plan_batch, plan_whole

H = 3600.0


def job(key: str, options: list[tuple[int, float, float]], hours: float = 1.0, gpus: float = 1.0):
    """options: (cluster, start hour, cost) each."""
    return BatchJob(
        key=key,
        type_code=0,
        duration_s=hours * H,
        demand=np.array([gpus]),
        cluster=np.array([c for c, _, _ in options], dtype=np.int64),
        start_s=np.array([s * H for _, s, _ in options]),
        cost=np.array([g for _, _, g in options], dtype=float),
    )


def room_of(table: list[list[float]]) -> np.ndarray:
    """[slots][clusters] of one pool and one resource → [slots, clusters, 1, 1]."""
    return np.array(table, dtype=float)[:, :, None, None]


@pytest.mark.parametrize(
    ("start_h", "hours", "expected"),
    [
        (10.0, 2.5, (10, 13)),  # 10:00-12:30 touches slots 10, 11, 12
        (10.0, 1.0, (10, 11)),  # 10:00-11:00 is slot 10 alone
        (10.5, 0.25, (10, 11)),  # inside one slot
        (10.5, 1.0, (10, 12)),  # 10:30-11:30 touches 10 and 11
    ],
)
def test_a_run_occupies_every_slot_it_touches(start_h, hours, expected):
    span = occupied_slots(np.array([start_h * H]), hours * H, first_slot=0)
    assert tuple(span[0]) == expected


def test_the_green_slot_goes_to_the_job_that_gains_most_not_the_first():
    # One GPU of green room at hour 0 on cluster 0; cluster 1 always has room.
    # a: green 100 g, else 110 g (gains 10); b: green 100 g, else 300 g (gains 200).
    # First come (a first) would cost 100 + 300 = 400; jointly a elsewhere, b green: 210.
    jobs = [
        job("a", [(0, 0, 100.0), (1, 0, 110.0)]),
        job("b", [(0, 0, 100.0), (1, 0, 300.0)]),
    ]
    plan = plan_batch(jobs, room_of([[1.0, 5.0]]), now_s=0.0, gap=0.0)
    assert plan is not None and plan.status == "optimal"
    assert plan.choice == {"a": (1, 0.0), "b": (0, 0.0)}
    assert plan.unplaced == ()


def test_a_job_waits_for_the_slot_after_a_longer_run_ends():
    # Cluster 0 has one GPU; a (2 h, only option: now on cluster 0) holds slots 0 and 1.
    # b may start at hour 1 (150 g) or 2 (160 g) on cluster 0, or now on cluster 1 (500 g):
    # hour 1 collides with a's second slot, so the best is hour 2 on cluster 0.
    jobs = [
        job("a", [(0, 0, 50.0)], hours=2.0),
        job("b", [(0, 1, 150.0), (0, 2, 160.0), (1, 0, 500.0)]),
    ]
    plan = plan_batch(jobs, room_of([[1.0, 1.0]] * 4), now_s=0.0, gap=0.0)
    assert plan is not None
    assert plan.choice == {"a": (0, 0.0), "b": (0, 2 * H)}


def test_no_room_for_any_option_leaves_the_job_unplaced():
    # 2 GPUs asked, 1 in the room at every slot: nothing fits; the job keeps its old plan.
    plan = plan_batch([job("a", [(0, 0, 1.0), (0, 1, 1.0)], gpus=2.0)],
                      room_of([[1.0]] * 3), now_s=0.0)  # fmt: skip
    assert plan is not None and plan.choice == {} and plan.unplaced == ("a",)


def test_the_room_of_the_last_slot_holds_beyond_the_array():
    # The room array covers slot 0 only; a 3 h run at hour 0 uses slots 0-2, where the
    # room is slot 0's (1 GPU): two such jobs cannot both run there.
    jobs = [job("a", [(0, 0, 1.0), (1, 0, 9.0)], hours=3.0),
            job("b", [(0, 0, 1.0), (1, 0, 5.0)], hours=3.0)]  # fmt: skip
    plan = plan_batch(jobs, room_of([[1.0, 1.0]]), now_s=0.0, gap=0.0)
    assert plan is not None
    assert plan.choice == {"a": (0, 0.0), "b": (1, 0.0)}


def test_an_option_before_the_slot_of_now_is_refused():
    with pytest.raises(ValueError, match="before the slot of now"):
        plan_batch([job("a", [(0, 0, 1.0)])], room_of([[1.0]]), now_s=2 * H)


def test_options_of_unequal_length_are_refused():
    with pytest.raises(ValueError, match="a: cluster, start_s and cost differ"):
        BatchJob("a", 0, H, np.ones(1), np.zeros(2, dtype=np.int64), np.zeros(1), np.ones(1))


@st.composite
def instances(draw):
    clusters = draw(st.integers(1, 2))
    slots = draw(st.integers(1, 4))
    room = draw(
        st.lists(
            st.lists(st.integers(0, 3), min_size=clusters, max_size=clusters),
            min_size=slots + 3, max_size=slots + 3,
        )
    )  # fmt: skip
    jobs = []
    for i in range(draw(st.integers(1, 4))):
        slot_pairs = st.tuples(st.integers(0, clusters - 1), st.integers(0, slots - 1))
        pairs = draw(st.lists(slot_pairs, min_size=1, max_size=4, unique=True))
        options = [(c, float(s), float(draw(st.integers(1, 50)))) for c, s in pairs]
        jobs.append(job(f"j{i}", options, hours=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
                        gpus=float(draw(st.integers(1, 2)))))  # fmt: skip
    return jobs, room_of(room)


def feasible(jobs, choice, room) -> bool:
    used = np.zeros(room.shape[:2])
    for j in jobs:
        if j.key in choice:
            cluster, start = choice[j.key]
            a, b = occupied_slots(np.array([start]), j.duration_s, 0)[0]
            used[a:b, cluster] += j.demand[0]
    return bool((used <= room[:, :, 0, 0] + 1e-9).all())


def assert_offered_and_feasible(jobs, plan, room) -> None:
    """Every job placed or left out; never an option the caller did not offer (the caller's
    options keep the deadline); never more than the room."""
    for j in jobs:
        if j.key in plan.choice:
            offered = set(zip(j.cluster.tolist(), j.start_s.tolist(), strict=True))
            assert plan.choice[j.key] in offered
    assert set(plan.choice) | set(plan.unplaced) == {j.key for j in jobs}
    assert feasible(jobs, plan.choice, room)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_the_plan_never_overcommits_keeps_to_the_options_and_is_optimal(case):
    jobs, room = case
    plan = plan_batch(jobs, room, now_s=0.0, gap=0.0)
    assert plan is not None and plan.status == "optimal"
    assert_offered_and_feasible(jobs, plan, room)
    # brute force: fewest unplaced jobs first, then least cost
    best = None
    for picks in itertools.product(*[[None, *range(len(j.cost))] for j in jobs]):
        choice = {j.key: (int(j.cluster[p]), float(j.start_s[p]))
                  for j, p in zip(jobs, picks, strict=True) if p is not None}  # fmt: skip
        if not feasible(jobs, choice, room):
            continue
        cost = sum(float(j.cost[p]) for j, p in zip(jobs, picks, strict=True) if p is not None)
        key = (sum(p is None for p in picks), cost)
        best = key if best is None or key < best else best
    assert best is not None
    got_cost = 0.0
    for j in jobs:
        if j.key in plan.choice:
            options = list(zip(j.cluster.tolist(), j.start_s.tolist(), strict=True))
            got_cost += float(j.cost[options.index(plan.choice[j.key])])
    assert (len(plan.unplaced), got_cost) == pytest.approx(best)


def test_whole_keeps_only_the_jobs_the_relaxation_puts_on_one_option():
    # 1.5 GPUs of green room at hour 0 on cluster 0 for two 1-GPU jobs that gain the same
    # there: the LP's vertex puts one wholly on the green slot and half of the other (its
    # largest share, 0.5, is not whole: left out); the MILP puts exactly one there.
    jobs = [
        job("a", [(0, 0, 100.0), (1, 0, 300.0)]),
        job("b", [(0, 0, 100.0), (1, 0, 300.0)]),
    ]
    room = room_of([[1.5, 5.0]])
    relaxed = plan_batch(jobs, room, now_s=0.0, integer=False, gap=0.0)
    assert relaxed is not None
    assert sorted(relaxed.shares.values()) == pytest.approx([0.5, 1.0])
    whole = relaxed.whole()
    [kept] = whole.choice
    assert whole.choice[kept] == (0, 0.0) and whole.unplaced == tuple(k for k in "ab" if k != kept)
    milp = plan_whole(jobs, room, now_s=0.0)
    assert milp is not None and milp.status == "optimal"
    assert sorted(milp.choice.values()) == [(0, 0.0), (1, 0.0)]  # one green, one not: whole


def test_rounded_puts_whole_jobs_where_the_relaxation_split_them_and_keeps_the_room():
    # The case above: the LP puts a wholly on the green slot (or b) and half of the other
    # (1.5 GPUs of room). Rounded, the whole one keeps the green slot, the half one takes
    # its cheapest option that still fits (cluster 1): 100 + 300 g, as the MILP's plan.
    jobs = [
        job("a", [(0, 0, 100.0), (1, 0, 300.0)]),
        job("b", [(0, 0, 100.0), (1, 0, 300.0)]),
    ]
    room = room_of([[1.5, 5.0]])
    plan = plan_batch(jobs, room, now_s=0.0, integer=False, rounded=True, gap=0.0)
    assert plan is not None and plan.unplaced == ()
    assert sorted(plan.choice.values()) == [(0, 0.0), (1, 0.0)]
    green = next(k for k, v in plan.choice.items() if v == (0, 0.0))
    assert plan.shares[green] == pytest.approx(1.0)  # the surest job took the green slot
    # No option left with room: the job is left out (it keeps the plan it had).
    squeezed = plan_batch(jobs, room_of([[1.5, 0.5]]), now_s=0.0, integer=False,
                          rounded=True)  # fmt: skip
    assert squeezed is not None and len(squeezed.choice) == 1 and len(squeezed.unplaced) == 1
    # Rounded against a looser room (2 GPUs: the pool's whole capacity, say): the half job
    # keeps its largest share, green too; the LP's own room (1.5) is overbooked, the cap not.
    overbooked = plan_batch(jobs, room, now_s=0.0, integer=False, rounded=True, gap=0.0,
                            round_room=room_of([[2.0, 5.0]]))  # fmt: skip
    assert overbooked is not None and overbooked.choice == {"a": (0, 0.0), "b": (0, 0.0)}
    capped = plan_batch(jobs, room, now_s=0.0, integer=False, rounded=True, gap=0.0,
                        round_room=room_of([[1.9, 5.0]]))  # fmt: skip
    assert capped is not None and sorted(capped.choice.values()) == [(0, 0.0), (1, 0.0)]
    with pytest.raises(ValueError, match="rounded applies to the LP"):
        plan_batch(jobs, room, now_s=0.0, integer=True, rounded=True)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_the_rounded_plan_never_overcommits_and_keeps_to_the_options(case):
    jobs, room = case
    plan = plan_batch(jobs, room, now_s=0.0, integer=False, rounded=True)
    assert plan is not None
    assert_offered_and_feasible(jobs, plan, room)
