"""``computegrid sim --fleet FILE``: the study on a fleet of the user's own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from computegrid.cli import main

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
  power: {renewableShare: 0.85, carbonIntensity: 150, pricePerKWh: 0.45}
  nodes:
  - {name: cpu, computeType: general, count: 4, allocatable: {cpu: "64", memory: 256Gi}}
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
- name: south-mid
  hub: greater-bay
  region: east
  location: guangzhou
  power: {renewableShare: 0.4, carbonIntensity: 440, pricePerKWh: 0.5}
  nodes:
  - {name: cpu, computeType: general, count: 4, allocatable: {cpu: "64", memory: 256Gi}}
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
  - {name: hpc, computeType: supercomputing, count: 2, allocatable: {cpu: "128", memory: 512Gi}}
"""


def test_a_study_on_a_fleet_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET, encoding="utf-8")
    args = ["sim", "--fleet", str(fleet), "--jobs", "200", "--seeds", "1", "--scale", "3"]
    assert main([*args, "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["study"]["fleet"] == "file"
    # No province in a file: every cluster's hourly shape comes from the national mix.
    assert out["study"]["national_mix_clusters"] == ["east-near", "south-mid", "west-green"]
    cg = out["policies"]["computegrid"]
    assert cg["latency_violations"] == 0 and cg["overcommits"] == 0
    assert set(cg["utilisation"]) == {"east-near", "south-mid", "west-green"}
    # The greenest member takes more of the work than under nearest-to-origin.
    assert cg["carbon_t"] < out["policies"]["nearest"]["carbon_t"]
    bound = out["lower_bound"]
    if bound["slack_jobs"] == 0:
        for name, m in out["policies"].items():
            if m["latency_violations"] == 0:
                assert bound["carbon_t"] <= m["carbon_t"] + 1e-9, name
    else:
        assert math.isnan(cg["ratio_to_bound"])


def test_a_bad_fleet_file_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.replace("region: west", "region: north"), encoding="utf-8")
    assert main(["sim", "--fleet", str(fleet), "--jobs", "10", "--seeds", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "clusters.1.region" in err and err.count("\n") == 1
    assert main(["sim", "--fleet", str(tmp_path / "missing.yaml"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
