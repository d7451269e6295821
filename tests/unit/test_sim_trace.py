"""Synthetic traces and the Alibaba GPU trace v2023 loader of computegrid.sim.trace."""

from __future__ import annotations

import pytest

from computegrid.api.common import GPU, ComputeType, LatencySensitivity
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.sim.trace import (
    CATEGORIES,
    TraceError,
    load_alibaba_v2023,
    origin_region,
    synthetic_trace,
    with_windows,
    write_alibaba_sample,
)

FLEET = load_national_fleet().clusters
LATENCY = load_latency_model()
TRACE = synthetic_trace(3000, FLEET, LATENCY, seed=7, days=2)


def test_same_seed_same_trace_other_seed_other_trace():
    again = synthetic_trace(3000, FLEET, LATENCY, seed=7, days=2)
    other = synthetic_trace(3000, FLEET, LATENCY, seed=8, days=2)
    assert again == TRACE
    assert [j.arrival_s for j in other] != [j.arrival_s for j in TRACE]


def test_sorted_inside_the_span_and_durations_inside_each_category():
    ranges = {c.name: (c.min_s, c.max_s) for c in CATEGORIES}
    assert len(TRACE) == 3000
    assert [j.arrival_s for j in TRACE] == sorted(j.arrival_s for j in TRACE)
    assert all(0 <= j.arrival_s < 2 * 86_400 for j in TRACE)
    for job in TRACE:
        low, high = ranges[job.category]
        assert low <= job.duration_s <= high


def test_every_critical_job_has_a_cluster_of_its_type_within_budget():
    for job in TRACE:
        budget = job.request.latency_budget_ms
        if budget is None:
            continue
        assert any(
            job.request.compute_type in c.compute_types
            and LATENCY.rtt_ms(job.request.origin, c.location) <= budget
            for c in FLEET
        ), job


def test_the_mix_is_east_heavy_and_has_every_kind_of_work():
    east = sum(origin_region(j.request.origin) == "east" for j in TRACE) / len(TRACE)
    assert east > 0.7
    classes = {j.request.sensitivity for j in TRACE}
    types = {j.request.compute_type for j in TRACE}
    assert classes == set(LatencySensitivity)
    assert types == set(ComputeType)
    assert {j.category for j in TRACE} == {c.name for c in CATEGORIES}
    tolerant = sum(j.request.sensitivity is LatencySensitivity.LOW for j in TRACE) / len(TRACE)
    assert 0.5 < tolerant < 0.8  # the mix's weights put 62 % in the low class


def test_arrivals_follow_the_day():
    # Telemedicine peaks at 14:00 with amplitude 0.7: the 12-16 h window gets more than the
    # 0-4 h window (expected ratio (1 + 0.7·~0.94)/(1 − 0.7·~0.94) ≈ 5).
    tele = [j.arrival_s / 3600 % 24 for j in TRACE if j.category == "telemedicine"]
    afternoon = sum(12 <= h < 16 for h in tele)
    night = sum(0 <= h < 4 for h in tele)
    assert afternoon > 2 * night


HEADER_ROWS = [
    # name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, qos, phase, create, delete, sched
    ("p-late", 4000, 16384, 1, 1000, "", "BE", "Succeeded", 500, 4100, 600),
    ("p-first", 8000, 32768, 0, 0, "", "LS", "Succeeded", 100, 1900, 100),
    ("p-share", 2000, 8192, 0, 500, "", "BE", "Running", 200, 800, 200),
    ("p-pending", 1000, 1024, 1, 1000, "", "BE", "Pending", 300, "", ""),
    ("p-huge", 200000, 1024, 8, 1000, "", "BE", "Succeeded", 400, 900, 400),
]


def test_alibaba_loader_on_a_generated_sample(tmp_path):
    path = tmp_path / "openb_pod_list_test.csv"
    write_alibaba_sample(path, HEADER_ROWS)
    jobs, skipped = load_alibaba_v2023(path, FLEET, LATENCY, seed=1)
    # p-pending has no deletion time; p-huge asks 200 cores, more than any node (96).
    assert skipped == 2
    assert [j.request.name for j in jobs] == ["p-first", "p-share", "p-late"]
    first, share, late = jobs
    # times from the first creation (100 s); run time from scheduled to deletion
    assert (first.arrival_s, first.duration_s) == (0.0, 1800.0)
    assert (late.arrival_s, late.duration_s) == (400.0, 3500.0)
    assert first.request.pod_resources == {"cpu": 8.0, "memory": 32768 * 2**20}
    assert first.request.sensitivity is LatencySensitivity.MEDIUM  # qos LS
    assert first.request.compute_type is ComputeType.GENERAL
    assert share.request.pod_resources[GPU] == 1  # 500 milli-GPU → one whole GPU
    assert share.request.compute_type is ComputeType.INTELLIGENT
    assert late.request.sensitivity is LatencySensitivity.LOW  # qos BE


def test_alibaba_loader_limit_keeps_the_earliest(tmp_path):
    path = tmp_path / "pods.csv"
    write_alibaba_sample(path, HEADER_ROWS)
    jobs, _ = load_alibaba_v2023(path, FLEET, LATENCY, limit=1)
    assert [j.request.name for j in jobs] == ["p-first"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c\n1,2,3\n", "not an Alibaba v2023 pod list"),
        ("name,cpu_milli,memory_mib,num_gpu,creation_time,deletion_time\nx,abc,1,0,1,2\n",
         ":2: a number field"),
    ],
)  # fmt: skip
def test_alibaba_loader_rejects_other_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TraceError, match=message):
        load_alibaba_v2023(path, FLEET, LATENCY)


def test_alibaba_loader_names_a_missing_file(tmp_path):
    with pytest.raises(TraceError, match=r"nope\.csv"):
        load_alibaba_v2023(tmp_path / "nope.csv", FLEET, LATENCY)


def test_windows_go_to_a_share_of_low_and_medium_jobs_only():
    jobs = synthetic_trace(4000, FLEET, LATENCY, seed=7)
    windowed = with_windows(jobs, share=0.5, seed=7)
    # The same jobs, in the same order: windows come from a separate stream.
    assert [(j.request, j.arrival_s, j.duration_s) for j in windowed] == [
        (j.request, j.arrival_s, j.duration_s) for j in jobs
    ]
    eligible = [j for j in windowed if j.request.sensitivity is not LatencySensitivity.HIGH]
    with_deadline = [j for j in eligible if j.deadline_s is not None]
    assert all(
        j.deadline_s is None for j in windowed if j.request.sensitivity is LatencySensitivity.HIGH
    )
    assert 0.45 < len(with_deadline) / len(eligible) < 0.55  # binomial, n ≈ 3,000
    slack_h = [(j.deadline_s - j.arrival_s - j.duration_s) / 3600 for j in with_deadline]  # type: ignore[operator]
    assert min(slack_h) >= 2.0 and max(slack_h) <= 24.0
    assert with_windows(jobs, share=0.5, seed=7) == windowed  # seeded
    assert all(j.deadline_s is None for j in with_windows(jobs, share=0.0, seed=7))
    with pytest.raises(ValueError, match="window share"):
        with_windows(jobs, share=1.5)


def test_data_goes_to_the_given_share_of_low_and_medium_jobs_only():
    from computegrid.fleet_data import load_network_model
    from computegrid.sim.trace import DATA_SIZE_GIB, with_data

    windowed = with_windows(TRACE, share=0.5, seed=7)
    out = with_data(windowed, load_network_model(), share=0.5, seed=7)
    assert [j.arrival_s for j in out] == [j.arrival_s for j in windowed]  # the same jobs
    eligible = [j for j in out if j.request.sensitivity is not LatencySensitivity.HIGH]
    carrying = [j for j in out if j.request.data is not None]
    assert all(j.request.sensitivity is not LatencySensitivity.HIGH for j in carrying)
    assert 0.45 < len(carrying) / len(eligible) < 0.55
    for job in carrying:
        data = job.request.data
        assert data is not None and data.inputs[0].location == job.request.origin
        assert DATA_SIZE_GIB[0] <= data.inputs[0].size_gib <= DATA_SIZE_GIB[1]
        assert data.run_hours == pytest.approx(job.duration_s / 3600)
        slack = None if job.deadline_s is None else job.deadline_s - job.duration_s - job.arrival_s
        assert data.transfer_budget_s == (None if slack is None else pytest.approx(slack))
    # log-uniform over 1 GiB-2 TiB: the median is near sqrt(2048) = 45 GiB
    sizes = sorted(j.request.data.inputs[0].size_gib for j in carrying if j.request.data)
    assert 30 < sizes[len(sizes) // 2] < 70
    with pytest.raises(ValueError, match="data share"):
        with_data(TRACE, load_network_model(), share=1.5)
