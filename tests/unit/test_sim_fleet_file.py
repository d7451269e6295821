"""``computegrid sim --fleet FILE``: the study on a fleet of the user's own.

A three-cluster file: east-near (Shanghai, no province: flat curves at its figures),
west-green (Chengdu, ``province: Sichuan``) and south-mid (Guangzhou, ``province:
guangdong``, any case), the only one with supercomputing nodes. The file is called
``clusters.yaml`` on purpose: its figures must not pass for a cluster's own contracted green
supply (fleet.yaml's ``from: clusters.…``) whatever the file's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from computegrid.api.common import ComputeType, Region
from computegrid.cli import main
from computegrid.fleet_data.fleet_file import load_fleet_clusters, load_fleet_file
from computegrid.fleet_data.inputs import InputError
from computegrid.fleet_data.power import MODEL_PROVINCES
from computegrid.sim.study import SeedRun, StudyConfig, curves_for, run_seed

FLEET = """
clusters:
- name: east-near
  hub: yangtze-delta
  region: east
  location: shanghai
  power: {renewableShare: 0.2, carbonIntensity: 600, pricePerKWh: 0.6}
  nodes:
  - {name: cpu, computeType: general, count: 4, allocatable: {cpu: "64", memory: 256Gi}}
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
- name: west-green
  hub: sichuan
  region: west
  location: 成都
  province: Sichuan
  power: {renewableShare: 0.85, carbonIntensity: 150, pricePerKWh: 0.45}
  nodes:
  - {name: cpu, computeType: general, count: 4, allocatable: {cpu: "64", memory: 256Gi}}
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
- name: south-mid
  hub: greater-bay
  region: east
  location: guangzhou
  province: guangdong
  power: {renewableShare: 0.4, carbonIntensity: 440, pricePerKWh: 0.5}
  nodes:
  - {name: cpu, computeType: general, count: 4, allocatable: {cpu: "64", memory: 256Gi}}
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
  - {name: hpc, computeType: supercomputing, count: 2, allocatable: {cpu: "128", memory: 512Gi}}
"""
NAMES = ["east-near", "south-mid", "west-green"]  # FleetState order: by name


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(FLEET, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyConfig, SeedRun]:
    path = tmp_path_factory.mktemp("fleet") / "clusters.yaml"
    path.write_text(FLEET, encoding="utf-8")
    clusters = load_fleet_clusters(path, provinces=MODEL_PROVINCES)
    cfg = StudyConfig(jobs=200, seeds=(0,), scale=3, clusters=clusters)
    return cfg, run_seed(cfg, 0)


def test_the_cli_study_reports_flat_curves_and_a_bound_below_every_feasible_policy(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sim", "--fleet", str(fleet), "--jobs", "200", "--seeds", "1", "--scale", "3"]
    assert main([*args, "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    study = out["study"]
    assert study["fleet"] == "file"
    assert study["flat_curve_clusters"] == ["east-near"]
    assert study["province_curves"] == {"south-mid": "Guangdong", "west-green": "Sichuan"}
    cg = out["policies"]["computegrid"]
    assert cg["latency_violations"] == 0 and cg["overcommits"] == 0
    assert set(cg["utilisation"]) == set(NAMES)
    assert cg["carbon_t"] < out["policies"]["nearest"]["carbon_t"]
    bound = out["lower_bound"]
    assert bound["slack_jobs"] == 0  # enough capacity at --scale 3: the bound is exact
    feasible = {n: m for n, m in out["policies"].items() if m["latency_violations"] == 0}
    assert set(feasible) == set(out["policies"]) - {"always-west"}
    for name, m in feasible.items():
        assert bound["carbon_t"] <= m["carbon_t"] * (1 + 1e-5), name  # JSON rounds to 6 digits
        assert m["ratio_to_bound"] >= 1 - 1e-5, name

    assert main([*args, "--quiet", "--policies", "computegrid", "--no-bound"]) == 0
    table = capsys.readouterr().out
    assert "flat power curves (no province the model covers): east-near" in table
    assert "hourly power model: south-mid (Guangdong), west-green (Sichuan)" in table


def test_placements_follow_the_files_regions_and_locations(
    seed_run: tuple[StudyConfig, SeedRun],
) -> None:
    _, run = seed_run
    state = run.state
    assert [c.name for c in state.clusters] == NAMES
    jobs, replays = run.jobs, run.replays
    west = [i for i, c in enumerate(state.clusters) if c.region is Region.WEST]
    assert west == [NAMES.index("west-green")]
    aw = replays["always-west"]
    assert aw.placed.any() and set(aw.cluster[aw.placed].tolist()) == set(west)

    offers = {
        i: {
            ComputeType.GENERAL,
            ComputeType.INTELLIGENT,
            *([ComputeType.SUPERCOMPUTING] if n == "south-mid" else []),
        }
        for i, n in enumerate(NAMES)
    }
    near = replays["nearest"]
    at_nearest = 0
    for j, job in enumerate(jobs):
        r = job.request
        rtt = state.latency_from(r.origin)
        c = int(near.cluster[j])
        assert c >= 0
        assert r.compute_type in offers[c]
        if r.compute_type is ComputeType.SUPERCOMPUTING:
            assert NAMES[c] == "south-mid"
        allowed = [i for i in offers if r.compute_type in offers[i]]
        at_nearest += rtt[c] == min(rtt[i] for i in allowed)
        for name in ("computegrid", "nearest", "greedy-carbon", "least-loaded"):
            k = int(replays[name].cluster[j])
            if r.latency_budget_ms is not None:
                assert rtt[k] <= r.latency_budget_ms, (name, j)
            if r.latency_budget_ms == 5.0 and r.origin == "shanghai":
                assert NAMES[k] == "east-near"  # the only cluster within 5 ms of Shanghai
    # nearest goes farther only when the nearest cluster is full (none at --scale 3)
    assert at_nearest == len(jobs)
    assert any(j.request.origin == "shanghai" and j.request.latency_budget_ms == 5.0 for j in jobs)


def test_curves_are_the_model_for_a_province_and_flat_otherwise(
    seed_run: tuple[StudyConfig, SeedRun],
) -> None:
    cfg, _ = seed_run
    curves = curves_for(cfg)
    assert curves.names == tuple(NAMES) and curves.flat == ("east-near",)
    east, south, west = range(3)
    for series, value in (
        (curves.carbon, 600.0),
        (curves.carbon_market, 600.0),
        (curves.renewable, 0.2),
        (curves.price, 0.6),
    ):
        assert np.all(series[:, east] == value)
    for i, annual in ((south, 440.0), (west, 150.0)):
        assert curves.carbon[:, i].std() > 1.0  # hourly shape
        assert curves.carbon[:, i].mean() == pytest.approx(annual, rel=1e-3)
    # renewableShare in a file is no contracted supply: market-based equals location-based
    assert np.array_equal(curves.carbon_market, curves.carbon)
    assert np.all(curves.green_share == 0.0)


def test_a_bad_fleet_file_names_the_field(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.write_text(FLEET.replace("region: west", "region: north"), encoding="utf-8")
    assert main(["sim", "--fleet", str(fleet), "--jobs", "10", "--seeds", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "clusters.1.region" in err and err.count("\n") == 1

    fleet.write_text(FLEET.replace("province: Sichuan", "province: Sichaun"), encoding="utf-8")
    assert main(["sim", "--fleet", str(fleet), "--jobs", "10", "--seeds", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "clusters.1.province: 'Sichaun' is not one of" in err and err.count("\n") == 1

    assert main(["sim", "--fleet", str(fleet.parent / "missing.yaml"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_explain_reads_a_file_with_provinces(fleet: Path) -> None:
    assert [s.name for s in load_fleet_file(fleet)] == ["east-near", "west-green", "south-mid"]
    fleet.write_text(FLEET.replace("province: guangdong", "province: Atlantis"), "utf-8")
    with pytest.raises(InputError, match=r"clusters\.2\.province: 'Atlantis'"):
        load_fleet_clusters(fleet)  # without a list: any province of the city table
