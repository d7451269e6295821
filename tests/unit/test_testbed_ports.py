"""The port registry and fleet locks that keep two fleets apart (no binaries needed).

Why: two fleets started at the same moment used to choose ports independently; the registry
must hand out disjoint ports across processes, drop the reservations of fleets whose folder
is gone, and refuse a second fleet name on the same folder.
"""

from __future__ import annotations

import multiprocessing
import socket
from pathlib import Path

import pytest

from computegrid.testbed import ports

FLEETS, PER_FLEET = 6, 30  # 180 of 10,000 ports: unsynchronised choices would collide often


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPUTEGRID_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _reserve_after(start: object, name: str, workdir: str, out: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    out.put(ports.reserve(name, Path(workdir), PER_FLEET))  # type: ignore[attr-defined]


def test_fleets_reserving_at_the_same_moment_get_disjoint_ports(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = []
    for i in range(FLEETS):
        work = tmp_path / f"fleet{i}"
        work.mkdir()
        proc = ctx.Process(target=_reserve_after, args=(start, f"f{i}", str(work), out))
        proc.start()
        procs.append(proc)
    start.set()
    got = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    flat = [port for chosen in got for port in chosen]
    assert len(flat) == FLEETS * PER_FLEET
    assert len(set(flat)) == len(flat), "two fleets were given the same port"
    low, high = ports.PORT_RANGE
    assert all(low <= port < high for port in flat)
    recorded = [sorted(ports.reserved(tmp_path / f"fleet{i}")) for i in range(FLEETS)]
    assert sorted(recorded) == sorted(sorted(chosen) for chosen in got)


def test_reserved_ports_are_free_and_a_listener_is_skipped(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        chosen = ports.reserve("a", tmp_path, 50)
        assert busy.getsockname()[1] not in chosen
    for port in chosen:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_released_or_stale_reservation_is_forgotten(tmp_path: Path) -> None:
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for work in (first, second, third):
        work.mkdir()
    ports.reserve("a", first, 4)
    ports.reserve("b", second, 4)
    ports.release(first)
    assert ports.reserved(first) == []
    second.rmdir()  # its fleet's folder vanished without `down` (a deleted temp dir)
    ports.reserve("c", third, 4)
    assert ports.reserved(second) == []
    assert len(ports.reserved(third)) == 4


def test_a_second_fleet_name_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    ports.reserve("a", tmp_path, 2)
    with pytest.raises(ValueError, match="belongs to fleet 'a'"):
        ports.reserve("b", tmp_path, 2)
    assert len(ports.reserve("a", tmp_path, 3)) == 3  # the same fleet again: a new set


def test_fleet_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    with (
        ports.fleet_lock("a", tmp_path),
        pytest.raises(ports.FleetBusyError, match=r"pid \d+ a"),
        ports.fleet_lock("a", tmp_path),
    ):
        pass
    with ports.fleet_lock("a", tmp_path):  # free again once released
        pass
    assert not list(ports.registry_dir().glob("*.lock"))  # and leaves no file behind
