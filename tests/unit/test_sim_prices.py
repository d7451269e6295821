"""The LP bound's dual prices, learned into prices for room, and the prices file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_sim_metrics_bound import bound_of, job

from computegrid.api.common import ComputeType, LatencySensitivity
from computegrid.scheduling.capacity_price import RESOURCES, CapacityPrices, learn_prices
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.prices import candidate_prices, load_prices, main, save_prices

GENERAL = TYPE_CODES[ComputeType.GENERAL]
CPU = RESOURCES.index("cpu")


def test_the_full_green_cluster_is_priced_at_what_it_saves() -> None:
    # Two 8-core 1 h jobs at 0 h; a (100 g/kWh, PUE 1.2) holds one, b (500, PUE 1.25) both.
    # On a a job costs 9.6 g, on b 50 g: one more core-hour on a is worth (50 − 9.6)/8 =
    # 5.05 g, the only price; b has room to spare: 0.
    b = bound_of([job("j1", 0, 1), job("j2", 0, 1)], nodes_a=1)
    assert b.capacity_duals is not None
    assert b.capacity_duals[0, 0, GENERAL, CPU] == pytest.approx(40.4e-3 / 8)
    rest = b.capacity_duals.copy()
    rest[0, 0, GENERAL, CPU] = 0.0
    assert not rest.any()
    # Learned, that price makes a third such job indifferent between a and b: on a
    # 100 g/kWh + 8 × 5.05 g/h / (0.08 kW × 1.2) = 520.83 g/kWh, × 0.096 kW = 50 g/h as on b.
    prices = learn_prices([b.capacity_duals], bucket_hours=b.bucket_hours)
    extra = prices.g_per_unit_h[0, 0, GENERAL, CPU] * 8 / (0.08 * 1.2)
    assert (100 + extra) * 0.08 * 1.2 == pytest.approx(0.08 * 1.25 * 500)


def test_an_uncrowded_fleet_has_free_room() -> None:
    b = bound_of([job("j1", 0, 1), job("j2", 1, 1)], nodes_a=1)
    assert b.capacity_duals is not None and not b.capacity_duals.any()


def meta() -> dict[str, object]:
    return {"bucket_hours": 1.0, "clusters": ["a", "b"], "jobs": 2}


def duals(hours: int = 72) -> np.ndarray:
    d = np.zeros((hours, 2, len(TYPE_CODES), len(RESOURCES)))
    d[:, 0, GENERAL, CPU] = 0.002
    return d


@pytest.mark.parametrize(
    ("spec", "period", "classes"),
    [
        ("daily:1", 24, frozenset(LatencySensitivity)),
        ("hourly:0.5", None, frozenset(LatencySensitivity)),
        ("daily-all:2:low+medium", 24, frozenset({LatencySensitivity.LOW,
                                                  LatencySensitivity.MEDIUM})),
    ],
)  # fmt: skip
def test_candidates(spec: str, period: int | None, classes: frozenset[LatencySensitivity]) -> None:
    p = candidate_prices(spec, [duals(200)], meta())
    scale = float(spec.split(":")[1])
    assert p.period_h == period and p.applies_to == classes and p.clusters == ("a", "b")
    assert p.g_per_unit_h[0, 0, GENERAL, CPU] == pytest.approx(2.0 * scale)


@pytest.mark.parametrize("spec", ["weekly:1", "daily", "daily:x", "daily:1:urgent"])
def test_bad_candidates_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        candidate_prices(spec, [duals(200)], meta())


def test_a_prices_file_round_trips(tmp_path: Path) -> None:
    d = duals(200)
    d[:, 0, GENERAL, RESOURCES.index("memory")] = 9.4e-14  # kg per byte: 9.4e-11 g per byte·h
    p = candidate_prices("daily:1:low", [d], meta())
    path = tmp_path / "prices.json"
    save_prices(p, path, "test")
    back = load_prices(path)
    assert isinstance(back, CapacityPrices)
    assert (back.period_h, back.clusters, back.applies_to) == (24, ("a", "b"), p.applies_to)
    np.testing.assert_allclose(back.g_per_unit_h, p.g_per_unit_h, rtol=1e-12)
    assert back.g_per_unit_h[:, 0, GENERAL, RESOURCES.index("memory")].min() > 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw.pop("g_per_unit_h"), "g_per_unit_h: missing"),
        (lambda raw: raw.update(resources=["cpu"]), "types/resources"),
        (lambda raw: raw.update(applies_to=["urgent"]), "urgent"),
        (lambda raw: raw.update(g_per_unit_h=[[[[-1.0] * 3] * 3] * 2]), "≥ 0"),
    ],
)
def test_a_bad_prices_file_names_the_field(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "prices.json"
    save_prices(candidate_prices("daily:1", [duals(200)], meta()), path, "test")
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        load_prices(path)


def test_learning_on_an_evaluation_seed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["learn", str(tmp_path), "--jobs", "10", "--seeds", "100,3"])


def test_a_saved_lp_is_not_solved_again(tmp_path: Path) -> None:
    main(["learn", str(tmp_path), "--jobs", "40", "--seeds", "100", "--lp-only"])
    first = json.loads((tmp_path / "reference.json").read_text())["seeds"]["100"]
    assert "computegrid-timed" not in first
    duals_file = tmp_path / "duals-100.npy"
    solved_at = duals_file.stat().st_mtime_ns
    main(["learn", str(tmp_path), "--jobs", "40", "--seeds", "100"])
    second = json.loads((tmp_path / "reference.json").read_text())["seeds"]["100"]
    assert duals_file.stat().st_mtime_ns == solved_at  # the LP was not solved again
    assert second["bound"] == first["bound"]
    # the replays it lacked are there now, and no policy beats the bound it was given
    assert set(second) >= {"nearest", "computegrid", "computegrid-timed", "bound"}
    assert min(second[p] for p in ("nearest", "computegrid", "computegrid-timed")) >= first["bound"]


def test_try_prices_each_named_seed_from_the_others(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    main(["learn", str(tmp_path), "--jobs", "40", "--seeds", "100,101"])
    capsys.readouterr()
    main(["try", str(tmp_path), "daily:1", "daily:0", "--seeds", "101"])
    result = json.loads(capsys.readouterr().out)
    ref = json.loads((tmp_path / "reference.json").read_text())["seeds"]["101"]
    for spec in ("daily:1", "daily:0"):
        assert result[spec]["seeds"] == ["101"]
        (carbon,) = result[spec]["per_seed"]["carbon_t"]
        assert result[spec]["ratio"] == pytest.approx(carbon / ref["bound"], abs=2e-4)
    # free room (scale 0) is exactly computegrid-timed
    assert result["daily:0"]["vs_timed"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="--seeds: 102 not learned"):
        main(["try", str(tmp_path), "daily:1", "--seeds", "102"])
