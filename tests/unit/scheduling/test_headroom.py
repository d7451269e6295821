"""CriticalHeadroom, table-driven: one row a case, the arithmetic in the comment.

Clusters are one 64-cpu / 256 Gi node unless a row says otherwise. Most rows use a 10 %
reserve (``TEN``) so the arithmetic is round; the default (2 %, tuned) has rows of its own.
"""

from __future__ import annotations

import pytest
from builders import cluster, job, state

from computegrid.api import ComputeType, LatencySensitivity
from computegrid.scheduling import Decision, Diagnosis, Policy, Scheduler
from computegrid.scheduling.plugins.headroom import CriticalHeadroom, keeps_headroom
from computegrid.scheduling.policy import DEFAULT_FILTERS
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest

HIGH, MEDIUM, LOW = LatencySensitivity.HIGH, LatencySensitivity.MEDIUM, LatencySensitivity.LOW
INTELLIGENT = ComputeType.INTELLIGENT
TEN = CriticalHeadroom(reserve=0.1)


@pytest.mark.parametrize(
    ("free", "need", "allocatable", "reserve", "expected"),
    [
        (12.0, 8.0, 64.0, 0.1, False),  # 12 − 8 = 4, 4/64 = 6.25 % < 10 %
        (16.0, 8.0, 64.0, 0.1, True),  # 16 − 8 = 8, 8/64 = 12.5 % ≥ 10 %
        (14.4, 8.0, 64.0, 0.1, True),  # 14.4 − 8 = 6.4 = exactly 10 %: allowed
        (8.0, 8.0, 64.0, 0.0, True),  # no reserve: filling to the brim is allowed
        (6.0, 8.0, 64.0, 0.0, False),  # ... but not beyond it: 6 − 8 = −2 < 0
        (64.0, 60.0, 64.0, 0.1, True),  # idle: 4/64 = 6 % < 10 %, but nothing else runs
        (63.0, 60.0, 64.0, 0.1, False),  # 1 in use: 3/64 = 5 % < 10 %, not idle
        (0.0, 0.0, 0.0, 0.1, True),  # nothing allocatable: nothing to keep
    ],
)
def test_keeps_headroom(
    free: float, need: float, allocatable: float, reserve: float, expected: bool
) -> None:
    assert bool(keeps_headroom(free, need, allocatable, reserve)) is expected


@pytest.mark.parametrize(
    ("where", "request_", "plugin", "feasible"),
    [
        # 64 cpu, 52 used, a 8-cpu low job leaves 4/64 = 6.25 % < 10 % → rejected
        (cluster("beijing", used_cpu=52), job(cpu=8), TEN, False),
        # the same cluster and job, high class: not held back (the reserve is for it)
        (cluster("beijing", used_cpu=52), job(cpu=8, sensitivity=HIGH), TEN, True),
        # medium is not in the default applies_to
        (cluster("beijing", used_cpu=52), job(cpu=8, sensitivity=MEDIUM), TEN, True),
        # ... unless listed: 4/64 = 6.25 % < 10 % → rejected
        (
            cluster("beijing", used_cpu=52),
            job(cpu=8, sensitivity=MEDIUM),
            CriticalHeadroom(reserve=0.1, applies_to=frozenset({LOW, MEDIUM})),
            False,
        ),
        # 48 used: 64 − 48 − 8 = 8 left, 8/64 = 12.5 % ≥ 10 % → allowed
        (cluster("beijing", used_cpu=48), job(cpu=8), TEN, True),
        # 49.6 used: 64 − 49.6 − 8 = 6.4 = exactly 10 % of 64 → allowed (no rounding miss)
        (cluster("beijing", used_cpu=49.6), job(cpu=8), TEN, True),
        # reserve 0.2: 8/64 = 12.5 % < 20 % → rejected
        (cluster("beijing", used_cpu=48), job(cpu=8), CriticalHeadroom(reserve=0.2), False),
        # reserve 0: 64 − 56 − 8 = 0 left ≥ 0 → allowed
        (cluster("beijing", used_cpu=56), job(cpu=8), CriticalHeadroom(reserve=0.0), True),
        # every pod counts: 3 pods × 4 cpu on 52 used leave 64 − 52 − 12 = 0 → rejected;
        # 1 pod × 4 cpu leaves 64 − 52 − 4 = 8, 8/64 = 12.5 % → allowed
        (cluster("beijing", used_cpu=52), job(cpu=4, pods=3), TEN, False),
        (cluster("beijing", used_cpu=52), job(cpu=4, pods=1), TEN, True),
        # memory: 224 Gi of 256 leaves 32/256 = 12.5 % → allowed
        (cluster("beijing"), job(cpu=1, memory_gi=224), TEN, True),
        # memory: 240 Gi leaves 16/256 = 6.25 %, but no memory is in use (idle) → allowed
        (cluster("beijing"), job(cpu=1, memory_gi=240), TEN, True),
        # GPUs, summed over the cluster: 2 nodes × 8 = 16; 3 pods × 4 = 12 leave 4/16 = 25 %
        (
            cluster("beijing", gpu=8, nodes=2, types=(INTELLIGENT,)),
            job(cpu=1, gpu=4, pods=3, kind=INTELLIGENT),
            TEN,
            True,
        ),
        # 4 pods × 4 = 16 GPUs on an idle cluster: allowed (it would leave 0/16, but a job
        # that big could otherwise never run)
        (
            cluster("beijing", gpu=8, nodes=2, types=(INTELLIGENT,)),
            job(cpu=1, gpu=4, pods=4, kind=INTELLIGENT),
            TEN,
            True,
        ),
        # 60 of 64 cpu on an idle cluster: 4/64 = 6 % but idle → allowed; with 1 cpu in use
        # it would leave 3/64 = 5 % → rejected
        (cluster("beijing"), job(cpu=60), TEN, True),
        (cluster("beijing", used_cpu=1), job(cpu=60), TEN, False),
        # pod slots are not counted: 100 pods leave 10/110 = 9 % of pods, but cpu
        # 64 − 100 × 0.1 = 54 (84 %) and memory 256 − 100 × 0.5 = 206 Gi (80 %) → allowed
        (cluster("beijing"), job(cpu=0.1, memory_gi=0.5, pods=100), TEN, True),
        # a GPU job on a cluster with no GPUs: nothing to keep here (ResourcesFit rejects it)
        (cluster("beijing"), job(cpu=1, gpu=1), TEN, True),
        # the default, 2 % (1.28 of 64 cpu): 52 used + 8 leaves 4/64 = 6.25 % → allowed
        (cluster("beijing", used_cpu=52), job(cpu=8), CriticalHeadroom(), True),
        # 55 used + 8 leaves 1/64 = 1.6 % < 2 % → rejected; 54 used leaves 2/64 = 3.1 % → allowed
        (cluster("beijing", used_cpu=55), job(cpu=8), CriticalHeadroom(), False),
        (cluster("beijing", used_cpu=54), job(cpu=8), CriticalHeadroom(), True),
    ],
)
def test_feasible(
    where: ClusterSnapshot, request_: JobRequest, plugin: CriticalHeadroom, feasible: bool
) -> None:
    assert bool(plugin.feasible(request_, state(where))[0]) is feasible


def test_gpus_are_kept_where_resources_fit_would_say_yes() -> None:
    # 2 nodes × 8 GPUs = 16; a 1-GPU job leaves 15 (8 + 7). Two pods of 7 fit (one a node:
    # ResourcesFit says yes) but leave 15 − 14 = 1, 1/16 = 6.25 % < 10 % → rejected.
    fleet = state(cluster("beijing", gpu=8, nodes=2, types=(INTELLIGENT,)))
    fleet.reserve(0, job(cpu=1, gpu=1, kind=INTELLIGENT))
    big = job(cpu=1, gpu=7, pods=2, kind=INTELLIGENT)
    assert fleet.pods_fitting_per_cluster(big)[0] == 2
    assert not TEN.feasible(big, fleet)[0]
    assert TEN.reason(big, fleet, 0).startswith("would leave 6.2% of nvidia.com/gpu free (1 of 16)")


def test_vectorised_over_clusters() -> None:
    # a 8-cpu low job: 52 used → 4/64 = 6 % (no); 48 → 12.5 % (yes); 0 → 87.5 % (yes)
    fleet = state(
        cluster("beijing", name="a", used_cpu=52),
        cluster("beijing", name="b", used_cpu=48),
        cluster("beijing", name="c"),
    )
    assert TEN.feasible(job(cpu=8), fleet).tolist() == [False, True, True]


def test_reserve_follows_reservations() -> None:
    # 64 cpu, 8-cpu jobs: six fit with room (after the 6th, 48 used); the 7th leaves
    # 64 − 48 − 8 = 8 (12.5 %) → allowed; with 56 used an 8th would leave 0 → rejected.
    # The filter reads the live totals, not a cached copy.
    fleet = state(cluster("beijing"))
    plugin = TEN
    eight = job(cpu=8, memory_gi=1)
    for _ in range(6):
        assert plugin.feasible(eight, fleet)[0]
        fleet.reserve(0, eight)
    assert plugin.feasible(eight, fleet)[0]
    fleet.reserve(0, eight)
    assert not plugin.feasible(eight, fleet)[0]


def test_the_reason_says_why_in_words() -> None:
    # the default policy (2 %): 64 cpu, 55 used, 8 asked → 1 left, 1/64 = 1.5625 % → "1.6%"
    result = Scheduler().schedule(job(cpu=8), state(cluster("beijing", used_cpu=55)))
    assert isinstance(result, Diagnosis)
    verdict = result.evaluation.verdicts()[0]
    assert verdict.filter == "CriticalHeadroom"
    assert verdict.reason == (
        "would leave 1.6% of cpu free (1 of 64); "
        "low-sensitivity jobs keep 2% for latency-critical work"
    )
    # 10 %: 52 used + 8 → 4/64 = 6.25 % → "6.2%" (6.25 is stored just below)
    reason = TEN.reason(job(cpu=8), state(cluster("beijing", used_cpu=52)), 0)
    assert reason == (
        "would leave 6.2% of cpu free (4 of 64); "
        "low-sensitivity jobs keep 10% for latency-critical work"
    )


def test_memory_is_kept_too() -> None:
    # 256 Gi; a first job takes 8 Gi (248 free); 232 Gi more would leave 16 Gi,
    # 16/256 = 6.25 % < 10 % → rejected on memory (cpu: 64 − 1 − 1 = 62, 97 % is fine)
    plugin = TEN
    fleet = state(cluster("beijing"))
    fleet.reserve(0, job(cpu=1, memory_gi=8))
    big = job(cpu=1, memory_gi=232)
    assert not plugin.feasible(big, fleet)[0]
    assert plugin.reason(big, fleet, 0).startswith(
        "would leave 6.2% of memory free (16Gi of 256Gi)"
    )


def test_low_work_goes_elsewhere_and_critical_work_gets_the_room() -> None:
    # Default policy (2 % = 1.28 cpu). "near" (Beijing, 140 g/kWh) has 56 of 64 cpu used;
    # "far" (Qingyang, 600 g/kWh) is empty. A low 8-cpu job would leave near 0/64 → rejected
    # → far (13.6 ms; low is unbounded). A high 8-cpu job from Beijing: far is 13.6 ms > 5 ms,
    # near has exactly 8 free → near.
    fleet = state(
        cluster("beijing", name="near", used_cpu=56, carbon=140),
        cluster("qingyang", name="far", carbon=600),
    )
    low = Scheduler().schedule(job("beijing", cpu=8), fleet)
    assert isinstance(low, Decision) and low.cluster.name == "far"
    high = Scheduler().schedule(job("beijing", cpu=8, sensitivity=HIGH), fleet)
    assert isinstance(high, Decision) and high.cluster.name == "near"


def test_in_the_default_policy_after_resources_fit() -> None:
    # after ResourcesFit: a cluster the job cannot fit is explained by the per-node check
    assert DEFAULT_FILTERS.index("CriticalHeadroom") == DEFAULT_FILTERS.index("ResourcesFit") + 1
    result = Scheduler().schedule(job(cpu=1, gpu=1), state(cluster("beijing")))
    assert isinstance(result, Diagnosis)
    assert result.evaluation.verdicts()[0].filter == "ResourcesFit"


def test_default_args() -> None:
    plugin = CriticalHeadroom()
    assert plugin.reserve == 0.02
    assert plugin.applies_to == frozenset({LOW})


def test_args_from_a_policy() -> None:
    policy = Policy.model_validate(
        {"pluginArgs": {"CriticalHeadroom": {"reserve": 0.2, "applies_to": ["low", "medium"]}}}
    )
    plugin = Scheduler(policy).filters[DEFAULT_FILTERS.index("CriticalHeadroom")]
    assert isinstance(plugin, CriticalHeadroom)
    assert plugin.reserve == 0.2
    assert plugin.applies_to == frozenset({LOW, MEDIUM})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"reserve": -0.1}, "CriticalHeadroom.reserve must be in [0, 1), got -0.1"),
        ({"reserve": 1.0}, "CriticalHeadroom.reserve must be in [0, 1), got 1.0"),
        ({"reserve": "10%"}, "CriticalHeadroom.reserve must be a number, got '10%'"),
        ({"reserve": True}, "CriticalHeadroom.reserve must be a number, got True"),
        ({"applies_to": ["urgent"]}, "CriticalHeadroom.applies_to must list latency classes"),
        ({"applies_to": []}, "CriticalHeadroom.applies_to must name at least one latency class"),
    ],
)
def test_bad_args_name_the_field(args: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        CriticalHeadroom(**args)  # type: ignore[arg-type]
    assert str(err.value).startswith(message)
