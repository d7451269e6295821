"""The joint plan's inputs (scheduling/joint.py): each job's options, the room per hour slot."""

from __future__ import annotations

import numpy as np
import pytest
from builders import cluster, job, state

from computegrid.api.common import Region
from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.joint import DELAY_TIE_G_PER_H, job_options, slot_room
from computegrid.scheduling.state import TYPE_CODES
from computegrid.scheduling.timeshift import FleetForecast, Reservation

H = HOUR_S
GENERAL = TYPE_CODES[job().compute_type]


def flat_forecast(*carbon: float) -> FleetForecast:
    """One flat carbon figure per cluster (the state's order) for 48 h; price 0."""
    c = np.tile(np.array(carbon, dtype=float), (48, 1))
    return FleetForecast(0.0, c, c.copy(), np.zeros(c.shape), np.zeros(c.shape))


def options(fleet, *, now_h=0.5, deadline_h=4.0, node_fit_now=True):
    return job_options(
        "j",
        job("beijing", cpu=8),
        deadline_s=deadline_h * H,
        duration_s=1 * H,
        allowed=np.ones(fleet.size, dtype=bool),
        state=fleet,
        forecast=flat_forecast(100.0, 500.0),
        now_s=now_h * H,
        g_per_cny=0.0,
        horizon_h=48,
        node_fit_now=node_fit_now,
    )


def test_every_start_up_to_the_latest_less_the_margin_priced_by_the_run():
    fleet = state(cluster("qingyang"), cluster("zhangjiakou", region=Region.EAST))
    found = options(fleet)
    assert found is not None
    # Now 00:30, deadline 04:00, 1 h run: latest start 03:00, less the 1 h margin: 02:00.
    # Starts: now, then the whole hours 01:00 and 02:00; on both clusters.
    assert sorted(set(found.start_s / H)) == [0.5, 1.0, 2.0]
    assert sorted(set(found.cluster)) == [0, 1]
    # 8 cores × 10 W + 8 GiB × 0.375 W = 83 W; qingyang (west, PUE 1.2) at 100 g/kWh for 1 h
    # = 9.96 g, zhangjiakou (east, PUE 1.25) at 500 = 51.875 g; plus 0.001 g per hour waited.
    cost = {
        (int(c), s / H): g for c, s, g in zip(found.cluster, found.start_s, found.cost, strict=True)
    }
    assert cost[(0, 0.5)] == pytest.approx(9.96)
    assert cost[(0, 2.0)] == pytest.approx(9.96 + 1.5 * DELAY_TIE_G_PER_H)
    assert cost[(1, 1.0)] == pytest.approx(51.875 + 0.5 * DELAY_TIE_G_PER_H)
    assert found.demand[fleet.resource_index["cpu"]] == 8


@pytest.mark.parametrize("node_fit_now", [True, False])
def test_start_now_only_where_the_pods_fit_node_by_node(node_fit_now):
    # qingyang's one node has 4 of 64 cores free: an 8-core pod cannot start there now.
    fleet = state(cluster("qingyang", used_cpu=60), cluster("zhangjiakou", region=Region.EAST))
    found = options(fleet, node_fit_now=node_fit_now)
    assert found is not None
    now = {int(c) for c, s in zip(found.cluster, found.start_s, strict=True) if s == 0.5 * H}
    assert now == ({1} if node_fit_now else {0, 1})
    later = {int(c) for c, s in zip(found.cluster, found.start_s, strict=True) if s == 1.0 * H}
    assert later == {0, 1}  # later room is the plan's to judge, in totals per slot


def test_a_job_past_its_latest_start_has_no_options():
    fleet = state(cluster("qingyang"), cluster("zhangjiakou", region=Region.EAST))
    assert options(fleet, now_h=0.5, deadline_h=1.0) is None  # latest start 00:00 has passed


def test_room_is_free_now_less_the_reserve_plus_releases_less_kept_promises():
    fleet = state(cluster("qingyang", used_cpu=16), cluster("zhangjiakou", region=Region.EAST))
    cpu = fleet.resource_index["cpu"]

    def reservation(key, where, start_h, end_h, cores):
        amounts = np.zeros(len(fleet.resources))
        amounts[cpu] = cores
        return Reservation(key, where, GENERAL, start_h * H, end_h * H, amounts)

    room = slot_room(
        fleet,
        0.5 * H,
        reserve=0.02,
        horizon_h=4,
        releases=[reservation("ends", 1, 0.0, 1.5, 8.0)],  # back from the slot after 01:30
        held=[
            reservation("kept", 0, 2.0, 3.0, 32.0),  # slot 2 only
            reservation("due", 1, 0.0, 1.2, 4.0),  # due, not started: holds from now
        ],
    )
    general = room[:, :, GENERAL, cpu]
    # qingyang: 64 − 16 used − 2 % of 64 kept = 46.72; less the promise of 32 in slot 2.
    assert general[:4, 0] == pytest.approx([46.72, 46.72, 14.72, 46.72])
    # zhangjiakou: 64 − 1.28 = 62.72; the due promise holds slots 0-1 (to 01:12), the
    # release of 8 cores counts from slot 2 (after 01:30) on.
    assert general[:4, 1] == pytest.approx([58.72, 58.72, 70.72, 70.72])
    assert room.shape[0] == 4 + 26  # the horizon plus the longest run


def test_the_cap_is_the_pools_allocatable_less_the_reserve_and_kept_promises():
    # What a rounded plan may promise at most: from the next slot on, qingyang's 64 cores
    # whatever runs there now (16 used), less 2 % kept and the promise of 32 in slot 2; in
    # the slot of now, what is free now (48 less 2 %).
    fleet = state(cluster("qingyang", used_cpu=16), cluster("zhangjiakou", region=Region.EAST))
    cpu = fleet.resource_index["cpu"]
    amounts = np.zeros(len(fleet.resources))
    amounts[cpu] = 32.0
    kept = Reservation("kept", 0, GENERAL, 2 * H, 3 * H, amounts)
    cap = slot_room(fleet, 0.5 * H, reserve=0.02, horizon_h=4, held=[kept], allocatable=True)
    assert cap[:4, 0, GENERAL, cpu] == pytest.approx([46.72, 62.72, 30.72, 62.72])
    assert cap[:4, 1, GENERAL, cpu] == pytest.approx([62.72] * 4)
