"""``computegrid demo up --topology``: what it reads, waits for and prints (no cluster; the
live path is exercised by ``make demo-federated``, see docs/operator.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from computegrid.cli import main
from computegrid.cli.demo_federated import FEDERATION, hubs_ready, landed_rtt_ms, table
from computegrid.fleet_data import load_national_fleet, resolve_city
from computegrid.fleet_data.national import load_latency_model
from computegrid.testbed import federation

ROOT = Path(__file__).resolve().parents[2]


def hub_member(name: str, message: str, status: str = "True") -> dict[str, Any]:
    cond = {"type": "Ready", "status": status, "message": message}
    return {"metadata": {"name": name}, "status": {"conditions": [cond]}}


def test_a_hub_counts_as_ready_only_with_all_its_clusters() -> None:
    items = [
        hub_member("west", "hub with 2 clusters, 2 ready"),
        hub_member("yangtze-delta", "hub with 2 clusters, 1 ready"),  # one child not ready yet
        hub_member("north", "hub with 3 clusters, 3 ready", status="False"),
    ]
    assert hubs_ready(items, {"west": 2, "yangtze-delta": 2, "north": 3}) == ["west"]
    # A hub that knows fewer clusters than the topology gave it is not done either.
    assert hubs_ready([hub_member("west", "hub with 1 clusters, 1 ready")], {"west": 2}) == []


def job(name: str, origin: str, phase: str, path: list[str], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "annotations": {"computegrid.io/origin": origin},
        },
        "status": {"phase": phase, "path": path, **status},
    }


def test_the_rtt_is_to_the_cluster_the_job_landed_on() -> None:
    landed = job("a", "广州", "Running", ["national", "west", "gansu-qingyang"])
    qingyang = load_national_fleet().by_name("gansu-qingyang").location
    want = load_latency_model().rtt_ms(resolve_city("guangzhou").key, qingyang)
    assert landed_rtt_ms(landed) == want
    assert want > 5.0  # far from Guangzhou: not the parent's 0 default or a blurred figure
    # Not landed yet (the regional hub has not placed it), or an origin no one knows.
    assert landed_rtt_ms(job("b", "shanghai", "Scheduled", ["national", "west"])) is None
    assert landed_rtt_ms(job("c", "atlantis", "Running", ["n", "w", "gansu-qingyang"])) is None


def test_the_table_shows_the_path_through_the_hubs() -> None:
    jobs = [
        job("z-pending", "urumqi", "Pending", [], message="no cluster within 5 ms of urumqi"),
        job(
            "a-risk",
            "shanghai",
            "Succeeded",
            ["national", "yangtze-delta", "yangtze-delta-wujiang"],
            placement={"reasons": ["lowest carbon within the budget"]},
        ),
    ]
    lines = table(jobs).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "PATH", "RTT-MS", "WHY"]
    assert "national → yangtze-delta → yangtze-delta-wujiang" in lines[1]
    assert lines[1].rstrip().endswith("lowest carbon within the budget")
    assert "z-pending" in lines[2] and "no cluster within 5 ms of urumqi" in lines[2]


def test_bad_topology_or_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: [{name: west, delegation: Sometimes, members: [gansu-qingyang]}]\n")
    samples = str(ROOT / "deploy" / "samples")
    assert main(["demo", "up", "--topology", str(bad), "--samples", samples]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "regions.0.delegation" in err
    topology = str(ROOT / "deploy" / "testbed" / "federation.yaml")
    assert main(["demo", "up", "--topology", topology, "--members", "3"]) == 2
    assert "--members" in capsys.readouterr().err


def test_the_demo_s_federation_name_fits_the_shipped_topology() -> None:
    """A region's fleet is ``<name>-<region>`` (20 characters at most): a longer demo name
    failed `make demo-federated` before anything started."""
    topology = federation.read_topology(ROOT / "deploy" / "testbed" / "federation.yaml")
    federation.check_names(FEDERATION, topology)
    with pytest.raises(ValueError, match="over 20 characters"):
        federation.check_names("demofed", topology)
